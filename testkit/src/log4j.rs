//! The genuine vulnerable library for the lab: Apache log4j-core and log4j-api 2.14.1, the
//! last release before the CVE-2021-44228 fix. Maven Central is not reachable from these
//! machines; PyPI is, and the source distribution of `apache-flink-libraries==1.14.0`
//! bundles both jars (`deps/lib/`). [`ensure`] fetches it once (`cargo xtask setup`, or the
//! lab's first run), checks the hashes of the archive and of each jar, keeps the two jars
//! and drops the 220 MB archive; afterwards it only checks the cached jars' hashes.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use sha2::{Digest as _, Sha256};

use crate::{command_line, is_root, Error};

type Result<T> = std::result::Result<T, Error>;

/// Where the jars are kept between runs (root-owned, like the kernel packages' cache).
pub const CACHE_DIR: &str = "/var/cache/detector-log4j";

/// The source distribution, as PyPI's simple index lists it (the hash is PyPI's own).
const SDIST_URL: &str = "https://files.pythonhosted.org/packages/3d/a3/\
    685916e56b1e5ebdb3fe0ce6692c0e17a300bddf5cfa8ab7957289714aac/\
    apache-flink-libraries-1.14.0.tar.gz";
const SDIST_SHA256: &str = "291c0629bba522af02c013aa3fdc4a5d57064ff0aa6f07dcd400c8f3ffcca0f6";

/// Where the jars are inside the archive.
const MEMBER_DIR: &str = "apache-flink-libraries-1.14.0/deps/lib";

/// The jars, with the SHA-256 each must have. log4j-core's is the one published for 2.14.1
/// (the issue names it); log4j-api's was read off the same archive.
const JARS: [(&str, &str); 2] = [
    (
        "log4j-core-2.14.1.jar",
        "ade7402a70667a727635d5c4c29495f4ff96f061f12539763f6f123973b465b0",
    ),
    (
        "log4j-api-2.14.1.jar",
        "8caf58db006c609949a0068110395a33067a2bad707c3da35e959c0473f9a916",
    ),
];

/// The two jars, checked.
#[derive(Debug, Clone)]
pub struct Log4j {
    pub core: PathBuf,
    pub api: PathBuf,
}

impl Log4j {
    /// A `-cp` value holding both jars.
    pub fn classpath(&self) -> String {
        format!("{}:{}", self.core.display(), self.api.display())
    }
}

/// The cached jars, fetching them first if they are missing or do not match their hashes.
pub fn ensure() -> Result<Log4j> {
    let dir = Path::new(CACHE_DIR);
    let jar = |name: &str| dir.join(name);
    let log4j = Log4j {
        core: jar(JARS[0].0),
        api: jar(JARS[1].0),
    };
    if JARS.iter().all(|(name, sha)| matches(&jar(name), sha)) {
        return Ok(log4j);
    }
    if !is_root() {
        return Err(Error::Failed(format!(
            "fetching log4j 2.14.1 into {CACHE_DIR} needs root: run `cargo xtask setup` as root"
        )));
    }
    fs::create_dir_all(dir).map_err(Error::io(format!("creating {CACHE_DIR}")))?;
    let work = dir.join(format!(".fetch-{}", std::process::id()));
    let result = fetch_into(&work, dir);
    // The archive is large and useless once the jars are out; keep nothing half-done.
    let _ = fs::remove_dir_all(&work);
    result?;
    Ok(log4j)
}

fn fetch_into(work: &Path, dir: &Path) -> Result<()> {
    fs::create_dir_all(work).map_err(Error::io(format!("creating {}", work.display())))?;
    let sdist = work.join("sdist.tar.gz");
    println!("==> log4j: fetching 2.14.1 (apache-flink-libraries 1.14.0 from PyPI, 220 MB)");
    run(Command::new("curl")
        .args(["--fail", "--silent", "--show-error", "--location"])
        .args(["--retry", "3", "--output"])
        .arg(&sdist)
        .arg(SDIST_URL))?;
    let got = sha256_of(&sdist)?;
    if got != SDIST_SHA256 {
        return Err(Error::Failed(format!(
            "{SDIST_URL}: SHA-256 is {got}, PyPI lists {SDIST_SHA256}"
        )));
    }
    let members: Vec<String> = JARS
        .iter()
        .map(|(name, _)| format!("{MEMBER_DIR}/{name}"))
        .collect();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&sdist)
        .arg("-C")
        .arg(work)
        .args(&members))?;
    for (name, sha) in JARS {
        let extracted = work.join(MEMBER_DIR).join(name);
        let got = sha256_of(&extracted)?;
        if got != sha {
            return Err(Error::Failed(format!(
                "{name} from apache-flink-libraries 1.14.0: SHA-256 is {got}, expected {sha}"
            )));
        }
        let dest = dir.join(name);
        fs::rename(&extracted, &dest)
            .map_err(Error::io(format!("moving {name} to {}", dest.display())))?;
    }
    println!("==> log4j: 2.14.1 cached in {}", dir.display());
    Ok(())
}

/// Runs `cmd`, printing it first; fails unless it exits 0.
fn run(cmd: &mut Command) -> Result<()> {
    let line = command_line(cmd);
    println!("==> log4j: {line}");
    let status = cmd
        .status()
        .map_err(Error::io(format!("starting `{line}`")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Failed(format!("`{line}` failed ({status})")))
    }
}

/// Whether `path` exists with SHA-256 `sha` (a missing or unreadable file does not).
fn matches(path: &Path, sha: &str) -> bool {
    sha256_of(path).is_ok_and(|got| got == sha)
}

fn sha256_of(path: &Path) -> Result<String> {
    let mut file =
        fs::File::open(path).map_err(Error::io(format!("opening {}", path.display())))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .map_err(Error::io(format!("reading {}", path.display())))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_a_file_as_sha256sum_does() {
        let dir = std::env::temp_dir().join(format!("testkit-log4j-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("abc");
        fs::write(&file, b"abc").expect("write");
        // FIPS 180-2's test vector for "abc".
        assert_eq!(
            sha256_of(&file).expect("hash"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(matches(
            &file,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        ));
        assert!(!matches(&dir.join("missing"), JARS[0].1));
        let _ = fs::remove_file(&file);
        let _ = fs::remove_dir(&dir);
    }
}
