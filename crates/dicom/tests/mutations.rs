//! Property test of the parser on hostile input: thousands of mutated
//! objects (bit flips, overwritten lengths, truncations, spliced bytes) must
//! each parse or fail cleanly — never panic — and no parse may allocate more
//! than a small multiple of the input it was given.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use yunying_dicom::parse::{ParseOptions, parse_part10};
use yunying_dicom::write::{DataSetBuilder, ObjectBuilder};
use yunying_dicom::{Tag, VR};

/// Counts live heap bytes and their peak.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for ts in ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"] {
        let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", ts);
        b.charset("GB18030");
        b.str(Tag(0x0010, 0x0010), VR::PN, "Zhang^San=张^三");
        b.str(Tag(0x0020, 0x000D), VR::UI, "1.2.3");
        b.str(Tag(0x0020, 0x000E), VR::UI, "1.2.3.1");
        let mut inner = DataSetBuilder::new();
        inner.str(Tag(0x0008, 0x0100), VR::SH, "CODE");
        let mut item = DataSetBuilder::new();
        item.sequence(Tag(0x0040, 0xA043), vec![inner]);
        b.dataset.sequence(Tag(0x0040, 0x0275), vec![item]);
        b.u16(Tag(0x0028, 0x0010), 4).u16(Tag(0x0028, 0x0011), 4).u16(Tag(0x0028, 0x0100), 16);
        b.pixel_data_native(vec![1; 32], VR::OW);
        out.push(b.to_bytes());
    }
    let mut e = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3.5", "1.2.840.10008.1.2.4.50");
    e.str(Tag(0x0028, 0x0008), VR::IS, "2");
    e.pixel_data_fragments(&[vec![0xFF, 0xD8, 1, 2, 0xFF, 0xD9], vec![0xFF, 0xD8, 3, 4, 0xFF, 0xD9]]);
    out.push(e.to_bytes());
    out
}

fn mutate(rng: &mut Rng, src: &[u8]) -> Vec<u8> {
    let mut b = src.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => {
                // A huge length at a random place (past the preamble).
                let i = 132 + rng.below(b.len().saturating_sub(136));
                let v = [0xFFFF_FFFFu32, 0xFFFF_FFF0, 0x7FFF_FFFF, 0x0001_0000][rng.below(4)];
                b[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            2 => {
                let cut = 132 + rng.below(b.len() - 132);
                b.truncate(cut);
            }
            3 => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            4 => {
                let i = 132 + rng.below(b.len().saturating_sub(132));
                let n = rng.below(16);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(i..i, junk);
            }
            _ => {
                let i = 132 + rng.below(b.len().saturating_sub(140));
                b[i..i + 2].copy_from_slice(&[b'S', b'Q']);
            }
        }
        if b.len() < 140 {
            break;
        }
    }
    b
}

#[test]
fn mutated_objects_never_panic_or_balloon() {
    let seeds = seeds();
    let mut rng = Rng(0x5EED);
    let opts = ParseOptions::default();
    let (mut ok, mut refused) = (0, 0);
    for round in 0..20_000 {
        let src = &seeds[round % seeds.len()];
        let input = mutate(&mut rng, src);
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let r = std::panic::catch_unwind(|| {
            parse_part10(&mut std::io::Cursor::new(&input), input.len() as u64, &opts).map(|o| o.dataset.elements.len())
        });
        let grew = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        match r {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!("parser panicked on round {round}: {:?}", &input[..input.len().min(64)]),
        }
        // Deflated inputs may inflate; the bound is the inflate cap, far
        // below what a declared 4 GB length would cost.
        assert!(grew < 64 * input.len() + (1 << 20), "round {round}: {grew} bytes allocated for {} bytes", input.len());
    }
    assert!(ok > 1000 && refused > 1000, "mutations exercised both paths: {ok} ok, {refused} refused");
}
