//! The member institutions of the region and the local conventions each one
//! follows when it numbers its patients (which the generator imitates).

/// A member institution of the region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Institution {
    /// Stable short code, upper-case ASCII (also used as the patient-ID issuer).
    pub code: String,
    /// Full Chinese name, as written in (0008,0080) Institution Name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
}

impl Institution {
    /// An institution from its three names.
    pub fn new(code: &str, name_zh: &str, name_en: &str) -> Self {
        Institution { code: code.into(), name_zh: name_zh.into(), name_en: name_en.into() }
    }
}

/// The 16 member institutions of the region (Shengzhou radiology consultation
/// centre, 嵊州市放射影像会诊中心), in the order of the tender, lead hospital first,
/// with stable codes:
/// SZRMYY 嵊州市人民医院, SZFYBJY 嵊州市妇幼保健院, SZDWRMYY 嵊州市第五人民医院,
/// GLZXWSY 甘霖镇中心卫生院, CRZXWSY 崇仁镇中心卫生院, CLZXWSY 长乐镇中心卫生院,
/// SJZXWSY 三界镇中心卫生院, HZZXWSY 黄泽镇中心卫生院, SJJDSQ 三江街道社区卫生服务中心,
/// LSJDSQ 鹿山街道社区卫生服务中心, SHJDSQ 剡湖街道社区卫生服务中心, PKJDSQ 浦口街道社区卫生服务中心,
/// SHZWSY 石璜镇卫生院, GLZWSY 谷来镇卫生院, XYZWSY 仙岩镇卫生院, JTZWSY 金庭镇卫生院
/// (full Chinese names are prefixed 嵊州市).
pub fn region_institutions() -> Vec<Institution> {
    const LIST: [(&str, &str, &str); 16] = [
        ("SZRMYY", "嵊州市人民医院", "Shengzhou People's Hospital"),
        ("SZFYBJY", "嵊州市妇幼保健院", "Shengzhou Maternal and Child Health Care Hospital"),
        ("SZDWRMYY", "嵊州市第五人民医院", "Shengzhou Fifth People's Hospital"),
        ("GLZXWSY", "嵊州市甘霖镇中心卫生院", "Ganlin Town Central Health Centre"),
        ("CRZXWSY", "嵊州市崇仁镇中心卫生院", "Chongren Town Central Health Centre"),
        ("CLZXWSY", "嵊州市长乐镇中心卫生院", "Changle Town Central Health Centre"),
        ("SJZXWSY", "嵊州市三界镇中心卫生院", "Sanjie Town Central Health Centre"),
        ("HZZXWSY", "嵊州市黄泽镇中心卫生院", "Huangze Town Central Health Centre"),
        ("SJJDSQ", "嵊州市三江街道社区卫生服务中心", "Sanjiang Subdistrict Community Health Service Centre"),
        ("LSJDSQ", "嵊州市鹿山街道社区卫生服务中心", "Lushan Subdistrict Community Health Service Centre"),
        ("SHJDSQ", "嵊州市剡湖街道社区卫生服务中心", "Shanhu Subdistrict Community Health Service Centre"),
        ("PKJDSQ", "嵊州市浦口街道社区卫生服务中心", "Pukou Subdistrict Community Health Service Centre"),
        ("SHZWSY", "嵊州市石璜镇卫生院", "Shihuang Town Health Centre"),
        ("GLZWSY", "嵊州市谷来镇卫生院", "Gulai Town Health Centre"),
        ("XYZWSY", "嵊州市仙岩镇卫生院", "Xianyan Town Health Centre"),
        ("JTZWSY", "嵊州市金庭镇卫生院", "Jinting Town Health Centre"),
    ];
    LIST.iter().map(|(c, z, e)| Institution::new(c, z, e)).collect()
}

/// How an institution's patient registration system writes Patient ID (0010,0020).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdStyle {
    /// Hospitals: the institution code and 8 digits, `SZRMYY00123456`.
    CodeDigits,
    /// Township health centres (`...WSY`): `P` and 6 digits, counted from
    /// `P000123` at every centre, so the same string names different people
    /// at different centres.
    PNumber,
    /// Community health service centres (`...SQ`): 10 digits.
    Numeric,
}

pub(crate) fn id_style(code: &str) -> IdStyle {
    if code.ends_with("WSY") {
        IdStyle::PNumber
    } else if code.ends_with("SQ") {
        IdStyle::Numeric
    } else {
        IdStyle::CodeDigits
    }
}

/// The first Patient ID number of every `P`-style institution.
pub(crate) const FIRST_P_NUMBER: u64 = 123;

/// The `n`-th (0-based) local Patient ID of an institution.
pub(crate) fn local_patient_id(code: &str, n: u64, salt: u64) -> String {
    match id_style(code) {
        IdStyle::CodeDigits => format!("{code}{:08}", 100_000 + (salt % 900_000) + n * 37),
        IdStyle::PNumber => format!("P{:06}", FIRST_P_NUMBER + n),
        IdStyle::Numeric => format!("{:010}", 3_306_830_000u64 + (salt % 9_000) * 10 + n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_members_with_stable_codes() {
        let list = region_institutions();
        assert_eq!(list.len(), 16);
        let mut codes: Vec<&str> = list.iter().map(|i| i.code.as_str()).collect();
        assert_eq!(codes[0], "SZRMYY");
        assert_eq!(list[0].name_zh, "嵊州市人民医院");
        assert_eq!(list[0].name_en, "Shengzhou People's Hospital");
        assert_eq!(list[3].name_en, "Ganlin Town Central Health Centre");
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), 16);
        assert!(list.iter().all(|i| i.name_zh.starts_with("嵊州市") && i.name_zh.chars().count() <= 64));
        assert!(list.iter().all(|i| i.code.bytes().all(|b| b.is_ascii_uppercase())));
    }

    #[test]
    fn id_styles() {
        assert_eq!(local_patient_id("GLZXWSY", 0, 99), "P000123");
        assert_eq!(local_patient_id("JTZWSY", 0, 5), "P000123");
        let h = local_patient_id("SZRMYY", 2, 12345);
        assert!(h.starts_with("SZRMYY") && h.len() == 14, "{h}");
        let q = local_patient_id("SJJDSQ", 1, 7);
        assert!(q.len() == 10 && q.bytes().all(|b| b.is_ascii_digit()), "{q}");
    }
}
