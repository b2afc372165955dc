-- Person-name searches (PatientName=Zhang*, =张*) use these: a wildcard with
-- a literal prefix becomes a range on each component group, compared in the
-- "C" collation (byte order, the same as SQLite's) so that ranges are exact.
CREATE INDEX study_pn_alpha ON study((pn_alpha COLLATE "C"));
CREATE INDEX study_pn_ideo ON study((pn_ideo COLLATE "C"));
CREATE INDEX study_pn_phon ON study((pn_phon COLLATE "C"));
