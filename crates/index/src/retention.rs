//! The retention rule: until when an imaging exam must be kept, from the
//! exam and the patient's visits at the institution that made it. Pure
//! functions, no catalog access: the SQL catalog calls them at ingest and
//! whenever visit data arrives, the archive when it checks a deletion.
//!
//! # The rule
//!
//! 《医疗机构病历管理规定（2013年版）》第二十九条: 门（急）诊病历由医疗机构
//! 保管的，保存时间自患者最后一次就诊之日起不少于15年；住院病历保存时间自
//! 患者最后一次住院出院之日起不少于30年。Outpatient and emergency records
//! are kept at least 15 years from the patient's last visit; inpatient
//! records at least 30 years from the patient's last discharge. The region
//! applies this to every imaging exam, per institution: an exam made at
//! institution X counts the patient's visits at X only.
//!
//! - An outpatient (`O`) or emergency (`E`) exam is kept 15 years from the
//!   latest of: the exam's own date, and every visit of the patient at the
//!   institution, of any class (an outpatient or emergency visit's date, an
//!   inpatient stay's admission and discharge dates, the date of another
//!   exam there: the patient was seen that day). "最后一次就诊" names no
//!   class of visit, so every visit counts: the reading that keeps longer.
//! - An inpatient (`I`) exam is kept 30 years from the patient's last
//!   discharge at the institution.
//! - No end date at all (kept until visit data says otherwise) while the
//!   patient has an inpatient stay at the institution without a discharge
//!   (still admitted, or the discharge has not reached us), for an inpatient
//!   exam dated after every known discharge (its own stay's discharge is not
//!   known yet), and for an exam without any date.
//! - An exam without a study date counts from the day the archive received
//!   it, which is never earlier than the exam.
//!
//! Periods are counted as the Civil Code counts them (《民法典》第二百零一
//! 条、第二百零二条): the day of the event is not counted, and a period of
//! years ends on the corresponding day of the last year, or on the last day
//! of that month when it has no such day (29 February + 15 years → 28
//! February). The retain-until date is that last day, inclusive: an exam
//! retained until 20200315 may be deleted from 20200316 on, so it is
//! expired "before D" when its retain-until date is earlier than D.
//!
//! Dates are DICOM DA text (`YYYYMMDD`), which sorts as it should.

use serde::{Deserialize, Serialize};
use yunying_util::time::is_valid_da;

/// Years outpatient and emergency records are kept (art. 29).
pub const OUTPATIENT_YEARS: i64 = 15;
/// Years inpatient records are kept (art. 29).
pub const INPATIENT_YEARS: i64 = 30;

/// The patient class of an exam or a visit (HL7 PV1-2's O, E, I).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PatientClass {
    /// 门诊.
    #[serde(rename = "O")]
    Outpatient,
    /// 急诊: kept as outpatient records are.
    #[serde(rename = "E")]
    Emergency,
    /// 住院.
    #[serde(rename = "I")]
    Inpatient,
}

impl PatientClass {
    /// `O`, `E` or `I`, as the catalog stores it.
    pub fn code(self) -> &'static str {
        match self {
            PatientClass::Outpatient => "O",
            PatientClass::Emergency => "E",
            PatientClass::Inpatient => "I",
        }
    }

    pub fn from_code(s: &str) -> Option<PatientClass> {
        match s.trim() {
            "O" | "o" => Some(PatientClass::Outpatient),
            "E" | "e" => Some(PatientClass::Emergency),
            "I" | "i" => Some(PatientClass::Inpatient),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            PatientClass::Outpatient => "outpatient",
            PatientClass::Emergency => "emergency",
            PatientClass::Inpatient => "inpatient",
        }
    }
}

/// The exam whose retention is computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exam<'a> {
    pub class: PatientClass,
    /// Study Date, when the exam has a valid one.
    pub date: Option<&'a str>,
    /// The day the archive received it (the fallback for a missing date).
    pub received: Option<&'a str>,
}

/// One visit of the patient at the exam's institution, as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit<'a> {
    /// `None` when the class is not known: a visit known only by the
    /// Admission ID of an object, or another exam (a day the patient was seen).
    pub class: Option<PatientClass>,
    pub visit_number: &'a str,
    /// The visit's date (outpatient, emergency) or the admission date (inpatient).
    pub date: Option<&'a str>,
    pub discharged: Option<&'a str>,
}

/// Until when an exam is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retention {
    /// Kept until this day inclusive (`YYYYMMDD`); `basis` says why.
    Until { date: String, basis: String },
    /// No end date yet; `basis` says what is awaited.
    Indefinite { basis: String },
}

impl Retention {
    /// The retain-until date, if any.
    pub fn date(&self) -> Option<&str> {
        match self {
            Retention::Until { date, .. } => Some(date),
            Retention::Indefinite { .. } => None,
        }
    }

    pub fn basis(&self) -> &str {
        match self {
            Retention::Until { basis, .. } | Retention::Indefinite { basis } => basis,
        }
    }
}

/// `date` plus `years`, as the Civil Code counts a period of years: the
/// corresponding day, or the month's last day when there is none. `None`
/// for an invalid date.
pub fn add_years(date: &str, years: i64) -> Option<String> {
    if !is_valid_da(date) {
        return None;
    }
    let y: i64 = date[0..4].parse().ok()?;
    let (m, d) = (&date[4..6], &date[6..8]);
    let year = y + years;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let d = if m == "02" && d == "29" && !leap { "28" } else { d };
    Some(format!("{year:04}{m}{d}"))
}

fn valid(d: Option<&str>) -> Option<&str> {
    d.filter(|d| is_valid_da(d))
}

/// The retention of `exam`, given every visit of the patient at its institution.
pub fn retain_until(exam: &Exam<'_>, visits: &[Visit<'_>]) -> Retention {
    let indefinite = |basis: String| Retention::Indefinite { basis };
    let (exam_day, exam_day_is) = match (valid(exam.date), valid(exam.received)) {
        (Some(d), _) => (d, "the exam"),
        (None, Some(r)) => (r, "the exam's receipt (it has no study date)"),
        (None, None) => return indefinite("the exam has no date".into()),
    };
    if let Some(open) = visits
        .iter()
        .find(|v| v.class == Some(PatientClass::Inpatient) && valid(v.discharged).is_none())
    {
        let since = valid(open.date).map(|d| format!(" since {d}")).unwrap_or_default();
        return indefinite(format!("the patient is admitted{since} (visit {}) with no discharge known", open.visit_number));
    }
    match exam.class {
        PatientClass::Outpatient | PatientClass::Emergency => {
            let mut last = (exam_day, exam_day_is.to_string());
            for v in visits {
                for d in [valid(v.date), valid(v.discharged)].into_iter().flatten() {
                    if d > last.0 {
                        last = (d, format!("the last visit ({})", v.visit_number));
                    }
                }
            }
            match add_years(last.0, OUTPATIENT_YEARS) {
                Some(date) => Retention::Until {
                    date,
                    basis: format!(
                        "{} exam: {OUTPATIENT_YEARS} years from {} on {}",
                        exam.class.name(),
                        last.1,
                        last.0
                    ),
                },
                None => indefinite("the exam has no valid date".into()),
            }
        }
        PatientClass::Inpatient => {
            let last = visits
                .iter()
                .filter(|v| v.class == Some(PatientClass::Inpatient))
                .filter_map(|v| valid(v.discharged).map(|d| (d, v.visit_number)))
                .max();
            let Some((discharged, visit)) = last else {
                return indefinite("inpatient exam: no discharge of the patient is known".into());
            };
            if exam_day > discharged {
                return indefinite(format!(
                    "inpatient exam on {exam_day}, after the last known discharge ({discharged}): its stay's discharge is awaited"
                ));
            }
            match add_years(discharged, INPATIENT_YEARS) {
                Some(date) => Retention::Until {
                    date,
                    basis: format!("inpatient exam: {INPATIENT_YEARS} years from the last discharge ({visit}) on {discharged}"),
                },
                None => indefinite("inpatient exam: no valid discharge date".into()),
            }
        }
    }
}

/// Why a study may not be deleted today (`YYYYMMDD`), or `Ok` when it may:
/// its retention has ended (retain-until earlier than today) and it is not
/// under legal hold.
pub fn deletable(retain_until: Option<&str>, basis: Option<&str>, legal_hold: bool, today: &str) -> Result<(), String> {
    if legal_hold {
        return Err("the study is under legal hold".into());
    }
    match retain_until {
        None => Err(match basis {
            Some(b) => format!("the study has no retention end date ({b})"),
            None => "the study's retention has not been computed".into(),
        }),
        Some(d) if d >= today => Err(format!("the study is retained until {d} (inclusive)")),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PatientClass::*;

    fn visit<'a>(class: PatientClass, n: &'a str, date: &'a str, discharged: Option<&'a str>) -> Visit<'a> {
        Visit { class: Some(class), visit_number: n, date: Some(date), discharged }
    }

    #[test]
    fn the_rule_case_by_case() {
        struct Case<'a> {
            name: &'a str,
            class: PatientClass,
            date: Option<&'a str>,
            received: Option<&'a str>,
            visits: Vec<Visit<'a>>,
            expect: Option<&'a str>,
        }
        let cases = vec![
            Case { name: "outpatient, no visit: 15 years from the exam", class: Outpatient, date: Some("20000110"), received: None, visits: vec![], expect: Some("20150110") },
            Case {
                name: "outpatient: 15 years from the last visit",
                class: Outpatient,
                date: Some("20000110"),
                received: None,
                visits: vec![visit(Outpatient, "MZ1", "20000110", None), visit(Outpatient, "MZ2", "20050315", None)],
                expect: Some("20200315"),
            },
            Case {
                name: "a later visit of another class extends it",
                class: Outpatient,
                date: Some("20000110"),
                received: None,
                visits: vec![visit(Outpatient, "MZ2", "20050315", None), visit(Inpatient, "ZY1", "20080101", Some("20080120"))],
                expect: Some("20230120"),
            },
            Case {
                name: "emergency = outpatient",
                class: Emergency,
                date: Some("20000110"),
                received: None,
                visits: vec![visit(Emergency, "JZ1", "20030707", None)],
                expect: Some("20180707"),
            },
            Case {
                name: "inpatient: 30 years from the last discharge",
                class: Inpatient,
                date: Some("19900105"),
                received: None,
                visits: vec![visit(Inpatient, "ZY1", "19900101", Some("19900110")), visit(Outpatient, "MZ9", "20100101", None)],
                expect: Some("20200110"),
            },
            Case {
                name: "inpatient: a later stay's discharge extends it",
                class: Inpatient,
                date: Some("19900105"),
                received: None,
                visits: vec![visit(Inpatient, "ZY1", "19900101", Some("19900110")), visit(Inpatient, "ZY2", "19950601", Some("19950620"))],
                expect: Some("20250620"),
            },
            Case {
                name: "inpatient still admitted: no expiry yet",
                class: Inpatient,
                date: Some("20240105"),
                received: None,
                visits: vec![visit(Inpatient, "ZY1", "20240101", None)],
                expect: None,
            },
            Case {
                name: "outpatient exam of a patient still admitted: no expiry yet",
                class: Outpatient,
                date: Some("20000110"),
                received: None,
                visits: vec![visit(Inpatient, "ZY1", "20240101", None)],
                expect: None,
            },
            Case { name: "inpatient exam, no stay known", class: Inpatient, date: Some("20000110"), received: None, visits: vec![], expect: None },
            Case {
                name: "missing study date: from the day it was received",
                class: Outpatient,
                date: None,
                received: Some("20210301"),
                visits: vec![visit(Outpatient, "MZ1", "20050315", None)],
                expect: Some("20360301"),
            },
            Case { name: "no date at all", class: Outpatient, date: None, received: None, visits: vec![], expect: None },
            Case { name: "an invalid study date falls back to receipt", class: Outpatient, date: Some("20001340"), received: Some("20010101"), visits: vec![], expect: Some("20160101") },
            Case { name: "29 February + 15 years: 28 February", class: Outpatient, date: Some("20040229"), received: None, visits: vec![], expect: Some("20190228") },
            Case {
                name: "29 February discharge + 30 years",
                class: Inpatient,
                date: Some("19960220"),
                received: None,
                visits: vec![visit(Inpatient, "ZY1", "19960215", Some("19960229"))],
                expect: Some("20260228"),
            },
            Case {
                name: "an outpatient exam later than every visit counts from itself",
                class: Outpatient,
                date: Some("20100610"),
                received: None,
                visits: vec![visit(Outpatient, "MZ1", "20050315", None)],
                expect: Some("20250610"),
            },
            Case {
                name: "an inpatient exam later than every discharge waits for its stay's",
                class: Inpatient,
                date: Some("20100610"),
                received: None,
                visits: vec![visit(Inpatient, "ZY1", "20050301", Some("20050315"))],
                expect: None,
            },
            Case {
                name: "another, later exam of the patient is a visit",
                class: Outpatient,
                date: Some("20000110"),
                received: None,
                visits: vec![Visit { class: None, visit_number: "exam 1.2.3", date: Some("20120505"), discharged: None }],
                expect: Some("20270505"),
            },
            Case {
                name: "another exam is no discharge for an inpatient exam",
                class: Inpatient,
                date: Some("20000110"),
                received: None,
                visits: vec![
                    visit(Inpatient, "ZY1", "20000101", Some("20000120")),
                    Visit { class: None, visit_number: "exam 1.2.3", date: Some("20120505"), discharged: None },
                ],
                expect: Some("20300120"),
            },
            Case {
                name: "visits known by number only count for nothing",
                class: Outpatient,
                date: Some("20000110"),
                received: None,
                visits: vec![Visit { class: None, visit_number: "V1", date: None, discharged: None }],
                expect: Some("20150110"),
            },
        ];
        for c in cases {
            let got = retain_until(&Exam { class: c.class, date: c.date, received: c.received }, &c.visits);
            assert_eq!(got.date(), c.expect, "{}: {got:?}", c.name);
            assert!(!got.basis().is_empty(), "{}", c.name);
        }
    }

    #[test]
    fn bases_name_what_decided() {
        let r = retain_until(
            &Exam { class: Outpatient, date: Some("20000110"), received: None },
            &[visit(Outpatient, "MZ2", "20050315", None)],
        );
        assert_eq!(r.basis(), "outpatient exam: 15 years from the last visit (MZ2) on 20050315");
        let r = retain_until(&Exam { class: Inpatient, date: Some("20240105"), received: None }, &[visit(Inpatient, "ZY7", "20240101", None)]);
        assert!(r.basis().contains("ZY7") && r.basis().contains("admitted since 20240101"), "{}", r.basis());
    }

    #[test]
    fn years_are_added_as_the_civil_code_counts() {
        assert_eq!(add_years("20050315", 15).as_deref(), Some("20200315"));
        assert_eq!(add_years("20000229", 1).as_deref(), Some("20010228"));
        assert_eq!(add_years("20000229", 4).as_deref(), Some("20040229"));
        assert_eq!(add_years("20000229", 100).as_deref(), Some("21000228"), "2100 is not a leap year");
        assert_eq!(add_years("19000228", 100).as_deref(), Some("20000228"));
        assert_eq!(add_years("2005031", 15), None);
        assert_eq!(add_years("20050230", 15), None);
    }

    #[test]
    fn deletable_only_when_expired_and_not_held() {
        assert!(deletable(Some("20200315"), None, false, "20200316").is_ok());
        assert!(deletable(Some("20200315"), None, false, "20200315").unwrap_err().contains("retained until 20200315"));
        assert!(deletable(Some("20200315"), None, true, "20260101").unwrap_err().contains("legal hold"));
        assert!(deletable(None, Some("the patient is admitted"), false, "20260101").unwrap_err().contains("admitted"));
        assert!(deletable(None, None, false, "20260101").unwrap_err().contains("not been computed"));
    }

    #[test]
    fn class_codes_round_trip() {
        for c in [Outpatient, Emergency, Inpatient] {
            assert_eq!(PatientClass::from_code(c.code()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.code());
        }
        assert_eq!(PatientClass::from_code("X"), None);
    }
}
