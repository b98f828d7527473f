//! `lab-serve MODEL`: one server model on 127.0.0.1, outside the lab.
//!
//! Binds an ephemeral loopback port, prints `listening on ADDR`, and serves until killed. The
//! integration tests use it for what they cannot do in-process — `fork` inside the multithreaded
//! test harness, and measuring a server's memory — and it is handy for `strace -f`.
//! (The lab itself runs models through `iolab serve`.)

use std::{
    env,
    io::{self, Write as _},
    net::{Ipv4Addr, SocketAddr},
    process::ExitCode,
};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let names = lab_server::model_names().join(", ");
    let [name] = args.as_slice() else {
        eprintln!("usage: lab-serve MODEL (one of: {names})");
        return ExitCode::from(2);
    };
    let Some(model) = lab_server::model(name) else {
        eprintln!("lab-serve: unknown model '{name}'; valid models are {names}");
        return ExitCode::from(2);
    };
    match serve(model) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab-serve: {}: {e}", model.name);
            ExitCode::FAILURE
        }
    }
}

fn serve(model: &lab_server::Model) -> io::Result<()> {
    let listener = lab_server::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    (model.serve)(listener)
}
