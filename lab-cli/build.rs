//! Compiles the probes (lab-ebpf) for the BPF target with nightly and bpf-linker, so that
//! `src/probe.rs` can embed them with `include_bytes_aligned!`. `cargo xtask` puts both on PATH.
fn main() -> anyhow::Result<()> {
    let root_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../lab-ebpf");
    let probes = aya_build::Package { name: "lab-ebpf", root_dir, ..Default::default() };
    aya_build::build_ebpf([probes], aya_build::Toolchain::default())
}
