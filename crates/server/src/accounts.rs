//! The first accounts. There is no built-in default password: the first
//! administrator comes from `YUNYING_ADMIN_PASSWORD` (user `admin`, a
//! security administrator, who must change it at first sign-in and enrol
//! a second factor), or from `yunying serve --demo`, which makes the three
//! separate administrators and a few clinical users with random passwords,
//! printed once and kept in `<data>/demo-accounts.txt` (mode 0600).

use std::io::Write;
use std::path::Path;

use yunying_archive::identity::UserRequest;
use yunying_archive::{Archive, Caller};

use crate::app::anyhow_like::{Error, Result};

/// Creates `admin` from `YUNYING_ADMIN_PASSWORD` when the catalog has no user yet.
pub async fn bootstrap_admin(archive: &Archive) -> Result<()> {
    let Ok(password) = std::env::var("YUNYING_ADMIN_PASSWORD") else { return Ok(()) };
    if password.is_empty() || !archive.index().users().await?.is_empty() {
        return Ok(());
    }
    let user = archive
        .create_user(
            &Caller::system("bootstrap"),
            &UserRequest {
                username: "admin".into(),
                display_name: "安全管理员".into(),
                institution_code: None,
                roles: vec!["security-admin".into()],
                password,
                temporary: true,
            },
        )
        .await
        .map_err(|e| Error(format!("YUNYING_ADMIN_PASSWORD: {e}")))?;
    println!("yunying: created the first administrator {:?} (security administrator)", user.username);
    Ok(())
}

/// A random password that meets the rules (for demo and reset accounts).
pub fn random_password() -> String {
    let s = yunying_security::token::new_secret("");
    let core: String = s.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
    format!("Yy{core}#7")
}

/// The demo's accounts: the three administrators, the consultation
/// centre's radiologist (reads the region), a township clinic's doctor
/// (reads their clinic only). Made once; their passwords are printed.
pub async fn demo_accounts(archive: &Archive, data: &Path) -> Result<()> {
    if !archive.index().users().await?.is_empty() {
        return Ok(());
    }
    let members = yunying_synth::region_institutions();
    let centre = members[0].code.clone();
    let clinic = members.get(3).map(|m| m.code.clone()).unwrap_or_else(|| centre.clone());
    let plan: Vec<(&str, &str, Option<String>, &str)> = vec![
        ("sysadmin", "系统管理员", None, "system-admin"),
        ("secadmin", "安全管理员", None, "security-admin"),
        ("auditadmin", "审计管理员", None, "audit-admin"),
        ("radiologist", "会诊中心 放射科医师", Some(centre), "radiologist"),
        ("doctor", "乡镇卫生院 临床医师", Some(clinic), "clinician"),
    ];
    let mut lines = String::from("# Yunying demo accounts (administrators must enrol a TOTP second factor at first sign-in)\n");
    for (username, name, institution, role) in plan {
        let password = random_password();
        archive
            .create_user(
                &Caller::system("demo"),
                &UserRequest {
                    username: username.into(),
                    display_name: name.into(),
                    institution_code: institution.clone(),
                    roles: vec![role.into()],
                    password: password.clone(),
                    temporary: false,
                },
            )
            .await
            .map_err(|e| Error(format!("demo account {username}: {e}")))?;
        lines.push_str(&format!("{username}\t{password}\t{role}\t{}\n", institution.unwrap_or_default()));
    }
    let path = data.join("demo-accounts.txt");
    let mut f = {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(&path)?
    };
    f.write_all(lines.as_bytes())?;
    println!("yunying: demo accounts (also in {}):\n{lines}", path.display());
    Ok(())
}
