//! Synthetic people: a deterministic pool of Chinese names with their pinyin
//! (written as DICOM PN `Pinyin^Given=汉字^名`), sexes, birth dates and ages.
//! Nobody here is real.

use crate::rng::Rng;

/// Family names common in Zhejiang (裘, 钱, 俞, 竺 are typical of Shengzhou and Shaoxing).
const SURNAMES: &[(&str, &str)] = &[
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"),
    ("黄", "Huang"), ("赵", "Zhao"), ("吴", "Wu"), ("周", "Zhou"), ("徐", "Xu"), ("孙", "Sun"),
    ("马", "Ma"), ("朱", "Zhu"), ("胡", "Hu"), ("郭", "Guo"), ("何", "He"), ("林", "Lin"),
    ("罗", "Luo"), ("高", "Gao"), ("郑", "Zheng"), ("梁", "Liang"), ("谢", "Xie"), ("宋", "Song"),
    ("唐", "Tang"), ("韩", "Han"), ("冯", "Feng"), ("邓", "Deng"), ("曹", "Cao"), ("钱", "Qian"),
    ("金", "Jin"), ("俞", "Yu"), ("裘", "Qiu"), ("竺", "Zhu"), ("魏", "Wei"), ("商", "Shang"),
    ("丁", "Ding"), ("尹", "Yin"), ("邢", "Xing"), ("楼", "Lou"), ("袁", "Yuan"), ("潘", "Pan"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sex {
    M,
    F,
}

impl Sex {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Sex::M => "M",
            Sex::F => "F",
        }
    }
}

/// Given names: (hanzi, pinyin, sex). The last entries are deliberately hard for
/// character sets: 喆/堃/珺 are in GBK but not GB2312; 昞 and 琝 are GBK
/// characters whose second byte is 0x5C (`\`, the DICOM value delimiter);
/// 𠮷 (U+20BB7) is outside GBK and needs GB18030 four-byte codes or UTF-8.
const GIVEN: &[(&str, &str, Sex)] = &[
    ("建国", "Jianguo", Sex::M), ("小东", "Xiaodong", Sex::M), ("伟", "Wei", Sex::M), ("强", "Qiang", Sex::M),
    ("磊", "Lei", Sex::M), ("军", "Jun", Sex::M), ("勇", "Yong", Sex::M), ("杰", "Jie", Sex::M),
    ("涛", "Tao", Sex::M), ("明", "Ming", Sex::M), ("超", "Chao", Sex::M), ("刚", "Gang", Sex::M),
    ("志强", "Zhiqiang", Sex::M), ("晓明", "Xiaoming", Sex::M), ("浩然", "Haoran", Sex::M), ("子轩", "Zixuan", Sex::M),
    ("阿毛", "Amao", Sex::M), ("国庆", "Guoqing", Sex::M), ("海峰", "Haifeng", Sex::M), ("永康", "Yongkang", Sex::M),
    ("秀英", "Xiuying", Sex::F), ("桂英", "Guiying", Sex::F), ("丽", "Li", Sex::F), ("芳", "Fang", Sex::F),
    ("娜", "Na", Sex::F), ("敏", "Min", Sex::F), ("静", "Jing", Sex::F), ("艳", "Yan", Sex::F),
    ("娟", "Juan", Sex::F), ("秀兰", "Xiulan", Sex::F), ("霞", "Xia", Sex::F), ("桂兰", "Guilan", Sex::F),
    ("海燕", "Haiyan", Sex::F), ("雨涵", "Yuhan", Sex::F), ("欣怡", "Xinyi", Sex::F), ("梓涵", "Zihan", Sex::F),
    ("一诺", "Yinuo", Sex::F), ("淑珍", "Shuzhen", Sex::F), ("金花", "Jinhua", Sex::F), ("月娥", "Yue'e", Sex::F),
    ("喆", "Zhe", Sex::M), ("堃", "Kun", Sex::M), ("珺", "Jun", Sex::F),
    ("昞睿", "Bingrui", Sex::M), ("琝", "Min", Sex::F),
    ("𠮷祥", "Jixiang", Sex::M),
];

/// Index of the first given name that GBK cannot encode; those before are fine in GBK.
const FIRST_NON_GBK: usize = GIVEN.len() - 1;

/// A synthetic person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    /// PN value, `Qiu^Bingrui=裘^昞睿`.
    pub name: String,
    pub sex: Sex,
    /// Days since 1970-01-01 of the birth date.
    pub birth_days: i64,
    /// Whether every character of the name is in GBK.
    pub gbk_safe: bool,
}

/// A person picked from the pool. `study_days` is the day of the first exam;
/// the person is an adult unless `child` is set. `gbk_only` keeps the name
/// encodable in GBK.
pub(crate) fn person(rng: &mut Rng, study_days: i64, child: bool, female: bool, gbk_only: bool) -> Person {
    let (sur, sur_py) = *rng.pick(SURNAMES);
    let limit = if gbk_only { FIRST_NON_GBK } else { GIVEN.len() };
    let (given_idx, (given, given_py, sex)) = loop {
        // One in eight names comes from the hard tail of the list.
        let idx = if rng.chance(0.125) {
            limit.saturating_sub(6) + rng.below(6.min(limit) as u64) as usize
        } else {
            rng.below(40) as usize
        };
        let idx = idx.min(limit - 1);
        let g = GIVEN[idx];
        if !female || g.2 == Sex::F {
            break (idx, g);
        }
    };
    let age_years = if child {
        rng.range(1, 14)
    } else {
        // Adults, most between 40 and 80, as in a county hospital's CT room.
        let a = 18 + rng.below(40) as i64 + rng.below(35) as i64;
        a.min(95)
    };
    let birth_days = study_days - age_years * 365 - rng.range(0, 364);
    Person {
        name: format!("{sur_py}^{given_py}={sur}^{given}"),
        sex,
        birth_days,
        gbk_safe: given_idx < FIRST_NON_GBK,
    }
}

/// Whether `text` survives a round trip through the character set `term`.
pub(crate) fn encodable(text: &str, term: &str) -> bool {
    use yunying_dicom::charset::CharacterSet;
    let Some(cs) = CharacterSet::named(term) else { return false };
    let Some(fallback) = CharacterSet::fallback_from_label("gb18030") else { return false };
    CharacterSet::from_specific_character_set(Some(term.as_bytes()), fallback).decode(&cs.encode(text)) == text
}

/// A doctor's name in PN form (referring physicians, operators).
pub(crate) fn doctor(rng: &mut Rng) -> String {
    let (sur, sur_py) = *rng.pick(SURNAMES);
    let (given, given_py, _) = GIVEN[rng.below(40) as usize];
    format!("{sur_py}^{given_py}={sur}^{given}")
}

/// DICOM AS (Age String) of a person on a day: `058Y`, `010M`, `020D`.
pub(crate) fn age_string(birth_days: i64, on_days: i64) -> String {
    let (by, bm, bd) = yunying_util::time::civil_from_days(birth_days);
    let (y, m, d) = yunying_util::time::civil_from_days(on_days);
    let mut years = y - by;
    if (m, d) < (bm, bd) {
        years -= 1;
    }
    if years >= 1 {
        return format!("{:03}Y", years.min(999));
    }
    let months = (y - by) * 12 + m as i64 - bm as i64 - if d < bd { 1 } else { 0 };
    if months >= 1 {
        format!("{months:03}M")
    } else {
        format!("{:03}D", (on_days - birth_days).max(0))
    }
}

/// All names of the pool as PN values, with whether each is GBK-safe (for tests).
#[cfg(test)]
pub(crate) fn every_name() -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for (sur, sur_py) in SURNAMES {
        for (i, (given, given_py, _)) in GIVEN.iter().enumerate() {
            out.push((format!("{sur_py}^{given_py}={sur}^{given}"), i < FIRST_NON_GBK));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use yunying_dicom::charset::CharacterSet;

    #[test]
    fn every_name_round_trips_in_its_character_sets() {
        let mut saw_5c = false;
        for (name, gbk_ok) in every_name() {
            let mut terms = vec!["GB18030", "ISO_IR 192"];
            if gbk_ok {
                terms.push("GBK");
            }
            for term in terms {
                let cs = CharacterSet::named(term).unwrap();
                let raw = cs.encode(&name);
                if term == "GBK" && raw.contains(&0x5C) {
                    saw_5c = true;
                }
                let fallback = CharacterSet::fallback_from_label("gb18030").unwrap();
                let back = CharacterSet::from_specific_character_set(Some(term.as_bytes()), fallback);
                assert_eq!(back.decode(&raw), name, "{term}");
            }
            assert_eq!(encodable(&name, "GBK"), gbk_ok, "{name}");
        }
        assert!(saw_5c, "the pool must hold a GBK name with a 0x5C trail byte");
    }

    #[test]
    fn ages() {
        use yunying_util::time::days_from_civil;
        let b = days_from_civil(1966, 5, 20);
        assert_eq!(age_string(b, days_from_civil(2024, 5, 19)), "057Y");
        assert_eq!(age_string(b, days_from_civil(2024, 5, 20)), "058Y");
        let c = days_from_civil(2024, 1, 31);
        assert_eq!(age_string(c, days_from_civil(2024, 6, 1)), "004M");
        assert_eq!(age_string(c, days_from_civil(2024, 2, 10)), "010D");
    }

    #[test]
    fn people_are_deterministic_and_consistent() {
        let mut a = Rng::new(3);
        let mut b = Rng::new(3);
        for _ in 0..200 {
            let p = person(&mut a, 20_000, false, false, true);
            assert_eq!(p, person(&mut b, 20_000, false, false, true));
            assert!(p.gbk_safe);
            let age = age_string(p.birth_days, 20_000);
            let years: i64 = age[..3].parse().unwrap();
            assert!((18..=95).contains(&years) && age.ends_with('Y'), "{age}");
        }
        for _ in 0..50 {
            let p = person(&mut a, 20_000, true, true, false);
            assert_eq!(p.sex, Sex::F);
        }
    }
}
