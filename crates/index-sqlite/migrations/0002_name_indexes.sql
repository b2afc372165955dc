-- Person-name searches (PatientName=Zhang*, =张*) use these: a wildcard with
-- a literal prefix becomes a range on each component group.
CREATE INDEX study_pn_alpha ON study(pn_alpha);
CREATE INDEX study_pn_ideo ON study(pn_ideo);
CREATE INDEX study_pn_phon ON study(pn_phon);
