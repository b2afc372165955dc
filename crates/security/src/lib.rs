//! Cryptographic building blocks of Yunying (no I/O beyond reading key
//! files): password hashing and rules, TOTP, key rings, field encryption,
//! blind indexes, MACs and bearer tokens.
