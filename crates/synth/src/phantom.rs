//! The anatomy: 3D phantoms of a torso (chest and abdomen) and of a head,
//! built from ellipsoids and elliptic cylinders in patient coordinates
//! (DICOM LPS, millimetres: +x to the patient's left, +y posterior, +z
//! towards the head), each filled with a tissue. Shapes are painted in order,
//! later over earlier. A horizontal cut through the phantom is a list of 2D
//! ellipses ([`Phantom::section`]), which is all the renderer needs.
//!
//! Tissues carry their CT numbers (HU, with and without iodine contrast),
//! their MR signal (T1- and T2-weighted) and their X-ray attenuation.

use crate::rng::Rng;

/// What a region of the phantom is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tissue {
    Air,
    Lung,
    Fat,
    Soft,
    Muscle,
    Blood,
    Myocardium,
    Liver,
    Spleen,
    Kidney,
    Fluid,
    Cortical,
    Cancellous,
    Disc,
    Csf,
    Dura,
    Gray,
    White,
    Vitreous,
    Lens,
    Nodule,
    GroundGlass,
    Glandular,
    Table,
}

/// Number of [`Tissue`] variants (size of the lookup tables).
pub(crate) const TISSUES: usize = 24;

const ALL: [Tissue; TISSUES] = [
    Tissue::Air,
    Tissue::Lung,
    Tissue::Fat,
    Tissue::Soft,
    Tissue::Muscle,
    Tissue::Blood,
    Tissue::Myocardium,
    Tissue::Liver,
    Tissue::Spleen,
    Tissue::Kidney,
    Tissue::Fluid,
    Tissue::Cortical,
    Tissue::Cancellous,
    Tissue::Disc,
    Tissue::Csf,
    Tissue::Dura,
    Tissue::Gray,
    Tissue::White,
    Tissue::Vitreous,
    Tissue::Lens,
    Tissue::Nodule,
    Tissue::GroundGlass,
    Tissue::Glandular,
    Tissue::Table,
];

impl Tissue {
    /// CT number in Hounsfield units, without or with intravenous iodine contrast.
    pub(crate) fn hu(self, contrast: bool) -> i16 {
        use Tissue::*;
        let (plain, enhanced) = match self {
            Air => (-1000, -1000),
            Lung => (-850, -840),
            Fat => (-100, -100),
            Soft => (40, 45),
            Muscle => (50, 60),
            Blood => (40, 250),
            Myocardium => (45, 110),
            Liver => (60, 110),
            Spleen => (50, 120),
            Kidney => (35, 180),
            Fluid => (10, 10),
            Cortical => (1150, 1150),
            Cancellous => (750, 750),
            Disc => (80, 85),
            Csf => (8, 8),
            Dura => (70, 75),
            Gray => (38, 42),
            White => (28, 30),
            Vitreous => (12, 12),
            Lens => (110, 110),
            Nodule => (35, 60),
            GroundGlass => (-550, -540),
            Glandular => (25, 35),
            Table => (-350, -350),
        };
        if contrast { enhanced } else { plain }
    }

    /// MR signal (arbitrary units, 12-bit) in a T1- or T2-weighted spin echo.
    pub(crate) fn mr(self, t2: bool) -> i16 {
        use Tissue::*;
        let (t1w, t2w) = match self {
            Air | Table => (0, 0),
            Lung => (20, 25),
            Fat => (850, 650),
            Soft => (420, 380),
            Muscle => (350, 250),
            Blood => (60, 60),
            Myocardium => (350, 250),
            Liver => (500, 300),
            Spleen => (420, 500),
            Kidney => (400, 600),
            Fluid => (150, 1500),
            Cortical => (20, 20),
            Cancellous => (650, 450),
            Disc => (300, 900),
            Csf => (150, 1700),
            Dura => (250, 150),
            Gray => (450, 850),
            White => (620, 600),
            Vitreous => (120, 1600),
            Lens => (400, 200),
            Nodule => (350, 500),
            GroundGlass => (100, 300),
            Glandular => (400, 500),
        };
        if t2 { t2w } else { t1w }
    }

    /// Linear X-ray attenuation (per mm) at a diagnostic energy: water is
    /// 0.0195/mm; bone attenuates more than its CT number says at radiographic
    /// energies, hence the extra factor.
    pub(crate) fn mu(self, contrast: bool) -> f32 {
        let hu = self.hu(contrast) as f32;
        let rel = (1.0 + hu / 1000.0).max(0.0);
        let bone = if hu > 300.0 { 1.4 } else { 1.0 };
        0.0195 * rel * bone
    }

    /// A lookup table of any per-tissue value.
    pub(crate) fn table<T: Copy>(f: impl Fn(Tissue) -> T) -> [T; TISSUES] {
        ALL.map(f)
    }
}

/// A 3D shape: its axial cross-sections are ellipses rotated by `angle`
/// (radians, from +x towards +y) about the z axis.
#[derive(Debug, Clone)]
enum Geom {
    /// Semi-axes `r` = (along `angle`, across it, along z).
    Ellipsoid { c: [f64; 3], r: [f64; 3], angle: f64 },
    /// Elliptic cylinder (its z extent is the shape's `z_lo..z_hi`).
    Cylinder { c: [f64; 2], r: [f64; 2], angle: f64 },
}

#[derive(Debug, Clone)]
struct Shape {
    geom: Geom,
    tissue: Tissue,
    /// z extent, for quick rejection.
    z_lo: f64,
    z_hi: f64,
}

/// A 2D ellipse of an axial cross-section, with what the renderer needs precomputed:
/// the quadratic form `qa·dx² + qb·dx·dy + qc·dy² <= 1` and the half extents.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ellipse {
    pub cx: f64,
    pub cy: f64,
    qa: f64,
    qb: f64,
    qc: f64,
    /// Half width along x and half height along y of the bounding box.
    pub half_w: f64,
    pub half_h: f64,
    pub tissue: Tissue,
}

impl Ellipse {
    fn new(cx: f64, cy: f64, a: f64, b: f64, angle: f64, tissue: Tissue) -> Ellipse {
        let (s, c) = angle.sin_cos();
        let (ia, ib) = (1.0 / (a * a), 1.0 / (b * b));
        Ellipse {
            cx,
            cy,
            qa: c * c * ia + s * s * ib,
            qb: 2.0 * c * s * (ia - ib),
            qc: s * s * ia + c * c * ib,
            half_w: (a * a * c * c + b * b * s * s).sqrt(),
            half_h: (a * a * s * s + b * b * c * c).sqrt(),
            tissue,
        }
    }

    /// The x interval of the ellipse on the line at `y`.
    #[inline]
    pub(crate) fn x_span(&self, y: f64) -> Option<(f64, f64)> {
        let dy = y - self.cy;
        if dy.abs() > self.half_h {
            return None;
        }
        let b = self.qb * dy;
        let disc = b * b - 4.0 * self.qa * (self.qc * dy * dy - 1.0);
        if disc < 0.0 {
            return None;
        }
        let sq = disc.sqrt();
        let inv = 0.5 / self.qa;
        Some((self.cx + (-b - sq) * inv, self.cx + (-b + sq) * inv))
    }

    /// The y interval of the ellipse on the line at `x`.
    #[inline]
    pub(crate) fn y_span(&self, x: f64) -> Option<(f64, f64)> {
        let dx = x - self.cx;
        if dx.abs() > self.half_w {
            return None;
        }
        let b = self.qb * dx;
        let disc = b * b - 4.0 * self.qc * (self.qa * dx * dx - 1.0);
        if disc < 0.0 {
            return None;
        }
        let sq = disc.sqrt();
        let inv = 0.5 / self.qc;
        Some((self.cy + (-b - sq) * inv, self.cy + (-b + sq) * inv))
    }
}

/// Which body the phantom is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anatomy {
    /// Neck, chest, abdomen: z from about -480 to +330 mm, z = 0 near the carina.
    Torso,
    /// Head: z from about -100 (skull base) to +100 mm (vertex), centred on the brain.
    Head,
}

/// Per-patient variation of the phantom.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhantomParams {
    pub anatomy: Anatomy,
    pub seed: u64,
    pub female: bool,
    /// Adult body size relative to the reference (0.85 to 1.1).
    pub scale: f64,
}

/// A phantom: shapes in painting order.
#[derive(Debug, Clone)]
pub(crate) struct Phantom {
    shapes: Vec<Shape>,
}

impl Phantom {
    /// The phantom of a patient, lying on the table or not (standing radiographs).
    pub(crate) fn new(p: &PhantomParams, table: bool) -> Phantom {
        let mut b = Builder { shapes: Vec::with_capacity(2048), scale: p.scale };
        match p.anatomy {
            Anatomy::Torso => torso(&mut b, p, table),
            Anatomy::Head => head(&mut b, p, table),
        }
        Phantom { shapes: b.shapes }
    }

    /// The axial cross-section at `z`: ellipses in painting order.
    pub(crate) fn section(&self, z: f64) -> Vec<Ellipse> {
        let mut out = Vec::with_capacity(64);
        self.section_into(z, &mut out);
        out
    }

    /// Like [`Phantom::section`], into a reused buffer.
    pub(crate) fn section_into(&self, z: f64, out: &mut Vec<Ellipse>) {
        out.clear();
        for s in &self.shapes {
            if z < s.z_lo || z > s.z_hi {
                continue;
            }
            match s.geom {
                Geom::Ellipsoid { c, r, angle } => {
                    let dz = (z - c[2]) / r[2];
                    let k = 1.0 - dz * dz;
                    if k <= 1e-6 {
                        continue;
                    }
                    let k = k.sqrt();
                    out.push(Ellipse::new(c[0], c[1], r[0] * k, r[1] * k, angle, s.tissue));
                }
                Geom::Cylinder { c, r, angle, .. } => {
                    out.push(Ellipse::new(c[0], c[1], r[0], r[1], angle, s.tissue));
                }
            }
        }
    }

    /// The tissue at a point (the last shape containing it), for tests.
    #[cfg(test)]
    pub(crate) fn tissue_at(&self, x: f64, y: f64, z: f64) -> Tissue {
        let mut t = Tissue::Air;
        for e in self.section(z) {
            if let Some((lo, hi)) = e.x_span(y)
                && (lo..=hi).contains(&x)
            {
                t = e.tissue;
            }
        }
        t
    }
}

struct Builder {
    shapes: Vec<Shape>,
    /// In-plane scale of the body (z is not scaled: scan ranges stay anatomical).
    scale: f64,
}

impl Builder {
    fn ellipsoid(&mut self, c: [f64; 3], r: [f64; 3], angle_deg: f64, tissue: Tissue) {
        let s = self.scale;
        let c = [c[0] * s, c[1] * s, c[2]];
        let r = [r[0] * s, r[1] * s, r[2]];
        self.shapes.push(Shape {
            geom: Geom::Ellipsoid { c, r, angle: angle_deg.to_radians() },
            tissue,
            z_lo: c[2] - r[2],
            z_hi: c[2] + r[2],
        });
    }

    fn cylinder(&mut self, c: [f64; 2], r: [f64; 2], z: [f64; 2], angle_deg: f64, tissue: Tissue) {
        let s = self.scale;
        self.shapes.push(Shape {
            geom: Geom::Cylinder { c: [c[0] * s, c[1] * s], r: [r[0] * s, r[1] * s], angle: angle_deg.to_radians() },
            tissue,
            z_lo: z[0],
            z_hi: z[1],
        });
    }
}

/// Right lung centre and semi-axes (the left is close to its mirror image).
pub(crate) const RIGHT_LUNG: ([f64; 3], [f64; 3]) = ([-75.0, 5.0, 5.0], [60.0, 82.0, 135.0]);
pub(crate) const LEFT_LUNG: ([f64; 3], [f64; 3]) = ([78.0, 8.0, 0.0], [56.0, 80.0, 130.0]);
/// The spinous processes: a continuous column of bone at this (x, y).
pub(crate) const SPINOUS_PROCESS: [f64; 2] = [0.0, 92.0];

fn torso(b: &mut Builder, p: &PhantomParams, table: bool) {
    use Tissue::*;
    let mut rng = Rng::new(p.seed);
    if table {
        // The table under the patient (supine, head first).
        b.shapes.push(Shape {
            geom: Geom::Cylinder { c: [0.0, 116.0 * p.scale + 10.0], r: [230.0, 6.0], angle: 0.0 },
            tissue: Table,
            z_lo: -900.0,
            z_hi: 600.0,
        });
    }
    // Body outline (subcutaneous fat), the rounded top of the thorax, the neck.
    b.cylinder([0.0, 0.0], [165.0, 115.0], [-480.0, 150.0], 0.0, Fat);
    b.ellipsoid([0.0, 0.0, 150.0], [165.0, 115.0, 45.0], 0.0, Fat);
    b.cylinder([0.0, 15.0], [62.0, 58.0], [150.0, 330.0], 0.0, Fat);
    if p.female {
        for sx in [-1.0, 1.0] {
            b.ellipsoid([75.0 * sx, -108.0, 30.0], [65.0, 38.0, 55.0], 0.0, Fat);
        }
    }
    // Muscle wall, neck muscles.
    b.cylinder([0.0, 0.0], [152.0, 102.0], [-480.0, 150.0], 0.0, Muscle);
    b.ellipsoid([0.0, 0.0, 150.0], [152.0, 102.0, 38.0], 0.0, Muscle);
    b.cylinder([0.0, 15.0], [52.0, 48.0], [150.0, 330.0], 0.0, Muscle);
    if p.female {
        for sx in [-1.0, 1.0] {
            b.ellipsoid([75.0 * sx, -121.0, 30.0], [38.0, 19.0, 36.0], 0.0, Glandular);
        }
    }
    // Thoracic cavity (mediastinal soft tissue), abdominal cavity (visceral fat),
    // paraspinal and psoas muscles, mediastinal fat.
    b.ellipsoid([0.0, -2.0, 10.0], [142.0, 94.0, 150.0], 0.0, Soft);
    b.cylinder([0.0, 0.0], [138.0, 90.0], [-480.0, -130.0], 0.0, Fat);
    for sx in [-1.0, 1.0] {
        b.cylinder([36.0 * sx, 84.0], [24.0, 16.0], [-480.0, 150.0], 0.0, Muscle);
        b.ellipsoid([42.0 * sx, 52.0, -420.0], [18.0, 16.0, 170.0], 0.0, Muscle);
    }
    b.ellipsoid([0.0, -30.0, 30.0], [40.0, 50.0, 90.0], 0.0, Fat);
    // Ribs: twelve pairs, each a chain of small ellipsoids along the chest
    // wall, descending from the spine towards the front. Painted before the
    // lungs, which flatten their inner side.
    let (rx, ry) = (143.0, 95.0);
    for j in 0..12 {
        let z_post = 150.0 - 22.0 * j as f64;
        let sweep: f64 = if j < 7 { 160.0 } else { 160.0 - 14.0 * (j - 6) as f64 };
        let mut t = 0.0;
        while t <= sweep {
            let theta_r: f64 = 102.0 + t; // right side, from the back round to the front
            let z = z_post - 48.0 * t / 160.0;
            for theta in [theta_r, 180.0 - theta_r] {
                let (s, c) = theta.to_radians().sin_cos();
                let tangent = (ry * c).atan2(-rx * s).to_degrees();
                b.ellipsoid([rx * c, ry * s, z], [9.0, 4.5, 6.0], tangent, Cortical);
            }
            t += 3.0;
        }
    }
    // Lungs.
    b.ellipsoid(RIGHT_LUNG.0, RIGHT_LUNG.1, 0.0, Lung);
    b.ellipsoid(LEFT_LUNG.0, LEFT_LUNG.1, 0.0, Lung);
    // Pulmonary vessels: branches radiating from the hila, and vertical trunks,
    // kept away from the centre of each lung.
    for (sx, lung) in [(-1.0, RIGHT_LUNG), (1.0, LEFT_LUNG)] {
        let hilum = [40.0 * sx, 5.0];
        for (k, (deg, z)) in [(150.0, -30.0), (215.0, -5.0), (125.0, 20.0), (235.0, 40.0), (190.0, -60.0), (160.0, -85.0)]
            .into_iter()
            .enumerate()
        {
            let deg: f64 = if sx > 0.0 { 180.0 - deg } else { deg };
            let (s, c) = deg.to_radians().sin_cos();
            let len = 70.0 - 5.0 * k as f64;
            let r = 3.2 - 0.3 * k as f64;
            b.ellipsoid([hilum[0] + c * len / 2.0, hilum[1] + s * len / 2.0, z], [len / 2.0, r, r], deg, Blood);
        }
        for (dx, dy, z, h) in [
            (28.0, -35.0, -20.0, 45.0),
            (-30.0, 35.0, -40.0, 45.0),
            (30.0, 40.0, 30.0, 45.0),
            (-28.0, -40.0, 20.0, 45.0),
            (-24.0, 10.0, -70.0, 30.0),
            (38.0, 0.0, 60.0, 35.0),
            (0.0, -55.0, 75.0, 30.0),
            (-20.0, 55.0, 70.0, 35.0),
        ] {
            b.ellipsoid([lung.0[0] + dx * -sx, lung.0[1] + dy, z], [2.2, 2.2, h], 0.0, Blood);
        }
    }
    // Nodules: solid and ground-glass, in the outer two thirds of the lungs.
    let n = 2 + rng.below(4);
    for i in 0..n {
        let lung = if rng.chance(0.55) { RIGHT_LUNG } else { LEFT_LUNG };
        let (c, r) = lung;
        let (mut u, mut v, mut w);
        loop {
            u = rng.uniform(-1.0, 1.0);
            v = rng.uniform(-1.0, 1.0);
            w = rng.uniform(-1.0, 1.0);
            let d2 = u * u + v * v + w * w;
            let off = ((u * r[0] * 0.65).powi(2) + (v * r[1] * 0.65).powi(2)).sqrt();
            if d2 <= 1.0 && off > 18.0 {
                break;
            }
        }
        let centre = [c[0] + u * r[0] * 0.65, c[1] + v * r[1] * 0.65, c[2] + w * r[2] * 0.6];
        let rad = rng.uniform(3.0, 8.0);
        let t = if i == 0 || rng.chance(0.7) { Nodule } else { GroundGlass };
        b.ellipsoid(centre, [rad, rad * rng.uniform(0.8, 1.0), rad * rng.uniform(0.8, 1.1)], rng.uniform(0.0, 180.0), t);
    }
    // Airways and oesophagus.
    b.cylinder([0.0, 0.0], [11.0, 10.0], [25.0, 330.0], 0.0, Soft);
    b.cylinder([0.0, 0.0], [8.5, 7.5], [28.0, 330.0], 0.0, Air);
    for sx in [-1.0, 1.0] {
        b.ellipsoid([18.0 * sx, 4.0, 22.0], [20.0, 5.5, 5.5], 0.0, Air);
    }
    b.cylinder([6.0, 20.0], [8.0, 7.0], [-150.0, 330.0], 0.0, Muscle);
    b.cylinder([6.0, 20.0], [2.0, 1.5], [-150.0, 330.0], 0.0, Air);
    // Upper abdomen: liver (its dome under the right lung), gallbladder,
    // stomach with its air cap, spleen, colon and small bowel with gas,
    // pancreas, kidneys.
    b.ellipsoid([-48.0, 5.0, -175.0], [92.0, 80.0, 95.0], 0.0, Liver);
    b.ellipsoid([-45.0, -40.0, -200.0], [15.0, 20.0, 30.0], 20.0, Fluid);
    b.ellipsoid([55.0, -20.0, -150.0], [50.0, 40.0, 50.0], 0.0, Soft);
    b.ellipsoid([55.0, -40.0, -128.0], [30.0, 18.0, 16.0], 0.0, Air);
    b.ellipsoid([85.0, 40.0, -160.0], [35.0, 45.0, 55.0], 30.0, Spleen);
    for (c, r, z) in [([-100.0, 10.0], [20.0, 18.0], [-430.0, -200.0]), ([105.0, 20.0], [17.0, 16.0], [-430.0, -170.0])] {
        b.cylinder(c, r, z, 0.0, Soft);
        b.cylinder([c[0], c[1] - 6.0], [r[0] * 0.5, r[1] * 0.4], z, 0.0, Air);
    }
    b.ellipsoid([0.0, -55.0, -235.0], [105.0, 18.0, 18.0], 0.0, Soft);
    b.ellipsoid([0.0, -60.0, -235.0], [95.0, 9.0, 9.0], 0.0, Air);
    for _ in 0..16 {
        let c = [rng.uniform(-70.0, 80.0), rng.uniform(-60.0, 20.0), rng.uniform(-440.0, -265.0)];
        let r = rng.uniform(14.0, 22.0);
        b.ellipsoid(c, [r * 1.4, r, r], rng.uniform(0.0, 180.0), Soft);
        if rng.chance(0.5) {
            b.ellipsoid([c[0], c[1] - r * 0.4, c[2]], [r * 0.7, r * 0.45, r * 0.6], 0.0, Air);
        }
    }
    b.ellipsoid([15.0, 12.0, -215.0], [55.0, 11.0, 14.0], -15.0, Muscle); // pancreas
    for sx in [-1.0, 1.0] {
        b.ellipsoid([70.0 * sx, 55.0, -255.0], [28.0, 25.0, 55.0], 20.0 * sx, Kidney);
        b.ellipsoid([62.0 * sx, 52.0, -255.0], [9.0, 8.0, 25.0], 20.0 * sx, Fluid); // renal pelvis
    }
    // Heart (myocardium around the blood pool), great vessels.
    b.ellipsoid([15.0, -35.0, -45.0], [62.0, 50.0, 58.0], -30.0, Myocardium);
    b.ellipsoid([15.0, -35.0, -45.0], [48.0, 37.0, 46.0], -30.0, Blood);
    b.cylinder([-5.0, -12.0], [15.0, 15.0], [-20.0, 60.0], 0.0, Blood); // ascending aorta
    b.ellipsoid([10.0, 8.0, 62.0], [35.0, 15.0, 14.0], 54.0, Blood); // arch
    b.cylinder([24.0, 28.0], [12.0, 12.0], [-380.0, 62.0], 0.0, Blood); // descending aorta
    b.cylinder([15.0, -38.0], [14.0, 14.0], [-5.0, 30.0], 0.0, Blood); // pulmonary trunk
    b.cylinder([-26.0, -16.0], [10.0, 10.0], [0.0, 120.0], 0.0, Blood); // superior vena cava
    b.cylinder([-22.0, 32.0], [12.0, 10.0], [-400.0, -60.0], 0.0, Blood); // inferior vena cava
    for sx in [-1.0, 1.0] {
        b.cylinder([22.0 * sx, -5.0], [6.0, 6.0], [120.0, 330.0], 0.0, Blood); // carotids
    }
    // Spine: vertebral bodies (cortical shell, cancellous core) with discs,
    // the neural arch round the spinal canal, spinous and transverse processes.
    let mut top = 330.0;
    while top > -480.0 {
        b.cylinder([0.0, 50.0], [18.0, 15.0], [top - 30.0, top - 24.0], 0.0, Disc);
        b.cylinder([0.0, 50.0], [18.0, 15.0], [top - 24.0, top], 0.0, Cortical);
        b.cylinder([0.0, 50.0], [15.5, 12.5], [top - 22.0, top - 2.0], 0.0, Cancellous);
        for sx in [-1.0, 1.0] {
            b.cylinder([28.0 * sx, 76.0], [13.0, 5.0], [top - 18.0, top - 6.0], 20.0 * sx, Cortical);
        }
        top -= 30.0;
    }
    b.cylinder([0.0, 74.0], [20.0, 14.0], [-480.0, 330.0], 0.0, Cortical);
    b.cylinder([0.0, 72.0], [9.5, 8.0], [-480.0, 330.0], 0.0, Csf);
    b.cylinder(SPINOUS_PROCESS, [5.0, 10.0], [-480.0, 330.0], 0.0, Cortical);
    // Sternum, clavicles, scapulae.
    b.cylinder([0.0, -97.0], [15.0, 6.0], [-90.0, 100.0], 0.0, Cortical);
    for sx in [-1.0, 1.0] {
        b.ellipsoid([75.0 * sx, -78.0, 150.0], [72.0, 8.0, 8.0], 12.0 * sx, Cortical);
        b.ellipsoid([108.0 * sx, 80.0, 60.0], [45.0, 5.0, 75.0], -34.0 * sx, Cortical);
    }
}

fn head(b: &mut Builder, _p: &PhantomParams, table: bool) {
    use Tissue::*;
    if table {
        // Head rest.
        b.shapes.push(Shape {
            geom: Geom::Cylinder { c: [0.0, 118.0], r: [85.0, 6.0], angle: 0.0 },
            tissue: Table,
            z_lo: -400.0,
            z_hi: 200.0,
        });
    }
    // Neck below the skull base.
    b.cylinder([0.0, 25.0], [55.0, 50.0], [-400.0, -60.0], 0.0, Muscle);
    // Scalp, skull (outer table, diploe, inner table), brain.
    b.ellipsoid([0.0, 0.0, 0.0], [80.0, 101.0, 96.0], 0.0, Soft);
    b.ellipsoid([0.0, 0.0, 3.0], [74.0, 95.0, 89.0], 0.0, Cortical);
    b.ellipsoid([0.0, 0.0, 3.0], [71.0, 92.0, 86.0], 0.0, Cancellous);
    b.ellipsoid([0.0, 0.0, 3.0], [69.0, 90.0, 84.0], 0.0, Cortical);
    b.ellipsoid([0.0, 2.0, 5.0], [66.0, 86.0, 80.0], 0.0, Csf);
    b.ellipsoid([0.0, 2.0, 5.0], [64.0, 84.0, 78.0], 0.0, Gray);
    b.ellipsoid([0.0, 4.0, 16.0], [50.0, 68.0, 55.0], 0.0, White);
    // Falx, deep grey nuclei, ventricles.
    b.ellipsoid([0.0, 2.0, 40.0], [1.2, 80.0, 40.0], 0.0, Dura);
    for sx in [-1.0, 1.0] {
        b.ellipsoid([21.0 * sx, -4.0, 6.0], [10.0, 18.0, 13.0], 8.0 * sx, Gray);
        b.ellipsoid([12.0 * sx, 2.0, 24.0], [6.5, 34.0, 13.0], -6.0 * sx, Csf);
        b.ellipsoid([25.0 * sx, 40.0, 12.0], [5.0, 10.0, 10.0], 0.0, Csf); // occipital horns
    }
    b.ellipsoid([0.0, 8.0, 4.0], [2.5, 12.0, 9.0], 0.0, Csf);
    // Posterior fossa: cerebellum, brain stem, fourth ventricle.
    b.ellipsoid([0.0, 52.0, -45.0], [52.0, 30.0, 26.0], 0.0, Gray);
    b.cylinder([0.0, 24.0], [13.0, 12.0], [-100.0, -8.0], 0.0, White);
    b.ellipsoid([0.0, 36.0, -42.0], [5.0, 4.0, 7.0], 0.0, Csf);
    // Skull base: petrous bones with mastoid air, sphenoid sinus.
    for sx in [-1.0, 1.0] {
        b.ellipsoid([38.0 * sx, 18.0, -45.0], [28.0, 9.0, 9.0], -40.0 * sx, Cortical);
        b.ellipsoid([58.0 * sx, 30.0, -52.0], [8.0, 8.0, 8.0], 0.0, Air);
    }
    b.ellipsoid([0.0, -32.0, -42.0], [11.0, 10.0, 9.0], 0.0, Air);
    // Face: orbits (fat, globes, lenses), nose, maxillary sinuses.
    for sx in [-1.0, 1.0] {
        b.ellipsoid([32.0 * sx, -70.0, -25.0], [19.0, 24.0, 17.0], 0.0, Fat);
        b.ellipsoid([32.0 * sx, -80.0, -25.0], [12.0, 12.0, 12.0], 0.0, Vitreous);
        b.ellipsoid([32.0 * sx, -91.0, -25.0], [4.5, 1.8, 4.5], 0.0, Lens);
        b.ellipsoid([26.0 * sx, -62.0, -62.0], [14.0, 17.0, 18.0], 0.0, Air);
    }
    b.ellipsoid([0.0, -100.0, -52.0], [12.0, 20.0, 26.0], 0.0, Soft);
    b.ellipsoid([0.0, -80.0, -55.0], [7.0, 26.0, 20.0], 0.0, Air);
}

/// Whether a point of the head phantom is inside the brain parenchyma
/// (grey or white matter), for tests.
#[cfg(test)]
pub(crate) fn is_brain(t: Tissue) -> bool {
    matches!(t, Tissue::Gray | Tissue::White)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torso() -> Phantom {
        Phantom::new(&PhantomParams { anatomy: Anatomy::Torso, seed: 1, female: false, scale: 1.0 }, true)
    }

    #[test]
    fn torso_has_its_organs_where_expected() {
        let t = torso();
        assert_eq!(t.tissue_at(RIGHT_LUNG.0[0], RIGHT_LUNG.0[1], 60.0), Tissue::Lung);
        assert_eq!(t.tissue_at(LEFT_LUNG.0[0], LEFT_LUNG.0[1], 60.0), Tissue::Lung);
        assert_eq!(t.tissue_at(SPINOUS_PROCESS[0], SPINOUS_PROCESS[1], 0.0), Tissue::Cortical);
        assert_eq!(t.tissue_at(0.0, 0.0, 100.0), Tissue::Air, "trachea");
        assert_eq!(t.tissue_at(24.0, 28.0, -100.0), Tissue::Blood, "descending aorta");
        assert_eq!(t.tissue_at(15.0, -35.0, -45.0), Tissue::Blood, "heart");
        assert_eq!(t.tissue_at(-60.0, 0.0, -200.0), Tissue::Liver);
        assert_eq!(t.tissue_at(0.0, -160.0, 0.0), Tissue::Air, "outside the body");
        assert_eq!(t.tissue_at(0.0, -108.0, -300.0), Tissue::Fat, "subcutaneous fat");
    }

    #[test]
    fn spans_agree_with_point_tests() {
        let e = Ellipse::new(3.0, -2.0, 20.0, 8.0, 0.6, Tissue::Soft);
        let inside = |x: f64, y: f64| {
            let (dx, dy) = (x - e.cx, y - e.cy);
            e.qa * dx * dx + e.qb * dx * dy + e.qc * dy * dy <= 1.0
        };
        for i in -30..30 {
            let y = i as f64 * 0.7;
            if let Some((lo, hi)) = e.x_span(y) {
                assert!(inside(lo + 1e-6 * (hi - lo), y) && inside((lo + hi) / 2.0, y));
                assert!(!inside(lo - 0.01, y) && !inside(hi + 0.01, y));
            }
            let x = i as f64;
            if let Some((lo, hi)) = e.y_span(x) {
                assert!(inside(x, (lo + hi) / 2.0));
                assert!(!inside(x, lo - 0.01) && !inside(x, hi + 0.01));
            }
        }
    }

    #[test]
    fn head_has_brain_inside_skull() {
        let h = Phantom::new(&PhantomParams { anatomy: Anatomy::Head, seed: 1, female: true, scale: 1.0 }, true);
        assert!(is_brain(h.tissue_at(40.0, 0.0, 30.0)));
        assert_eq!(h.tissue_at(0.0, -93.0, 20.0), Tissue::Cortical);
        assert_eq!(h.tissue_at(12.0, 2.0, 24.0), Tissue::Csf);
    }
}
