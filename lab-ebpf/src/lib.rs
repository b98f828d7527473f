#![no_std]
// This file exists so that lab-cli can name lab-ebpf as a build dependency: cargo then reruns
// lab-measure's build script, which compiles the probes in `main.rs`, whenever they change.
