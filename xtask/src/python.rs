//! `cargo xtask python`: a Python with gevent, for the walkthrough's servers in `examples/python/`.
//!
//! gevent is not in Python's standard library. Instead of installing it into the system's Python,
//! a virtualenv in `.tools/python/` (ignored by git, like bpf-linker) gets it from the Python
//! package index: `python3 -m venv`, then `pip install gevent`. The tests and the README run
//! `examples/python/gevent_server.py` with [`VENV_PYTHON`]. Each step checks before it acts, so a
//! second run changes nothing. `cargo xtask test` runs this first; where it cannot (no python3,
//! no venv module, no network) it says why and the tests go on: only the gevent server fails, and
//! its error says what is missing.

use std::{path::Path, process::Command};

use anyhow::{Context, Result};

use crate::{cmd, say};

/// The virtualenv's interpreter, relative to the workspace root.
pub const VENV_PYTHON: &str = ".tools/python/bin/python";

/// Makes sure `.tools/python` is a virtualenv with gevent in it.
pub fn ensure_gevent(root: &Path) -> Result<()> {
    let python = root.join(VENV_PYTHON);
    let venv = root.join(".tools/python");
    if let Ok(version) = gevent_version(&python) {
        say!("gevent: already there: {} (gevent {version})", python.display());
        return Ok(());
    }
    if !python.exists() {
        let python3 = which::which("python3").context("no python3 on PATH, so no virtualenv for gevent")?;
        say!("gevent: making a virtualenv in .tools/python (gevent is not in Python's standard library)");
        cmd::run(Command::new(python3).args(["-m", "venv"]).arg(&venv).current_dir(root))?;
    }
    say!("gevent: installing it into .tools/python from the Python package index");
    cmd::run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "gevent"]).current_dir(root))?;
    let version = gevent_version(&python).context("gevent was installed but does not import")?;
    say!("gevent: installed {version}; examples/python/gevent_server.py runs with {VENV_PYTHON}");
    Ok(())
}

/// The gevent version `python` imports, if it imports one.
fn gevent_version(python: &Path) -> Result<String> {
    let out = cmd::output(Command::new(python).args(["-c", "import gevent; print(gevent.__version__)"]))?;
    Ok(out.trim().to_owned())
}
