// SPDX-License-Identifier: GPL-2.0

//! Turn the guest patch into the header it defines, and check that header
//! three ways: a C probe compiled by the system compiler (for x86-64, and
//! compile-time asserts for i386), bindgen's reading of it, and the Rust
//! mirror in src/lib.rs (the tests compare them).
//!
//! The header is the pinned tree's kvm_para.h with the patch applied when
//! that tree is there ($ECS_PRISTINE_SRC, else the cache path of
//! scripts/lib/common.sh for the version in KERNEL_PIN); without it, the
//! lines the patch adds to kvm_para.h, wrapped in a header of their own.

#[allow(dead_code)]
#[path = "src/patchfile.rs"]
mod patchfile;

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

const PATCH_NAME: &str = "0001-x86-kvm-Add-the-eCS-paravirt-ABI.patch";
const STRUCT: &str = "kvm_ecs";
/// Constants the ABI uses that the patch does not add.
const PREEXISTING: &[&str] = &["KVM_CPUID_FEATURES", "KVM_MSR_ENABLED"];

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let repo = manifest.join("../../..");
    for var in [
        "ECS_ABI_PATCH",
        "ECS_PRISTINE_SRC",
        "ECS_CACHE",
        "XDG_CACHE_HOME",
        "HOME",
        "LIBCLANG_PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=src/patchfile.rs");
    println!("cargo:rustc-check-cfg=cfg(ecs_abi_pristine)");

    let patch_path = env::var_os("ECS_ABI_PATCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("guest-patches").join(PATCH_NAME));
    println!("cargo:rerun-if-changed={}", patch_path.display());
    let patch = read(&patch_path)?;
    let section = patchfile::file_section(&patch, patchfile::KVM_PARA_H).ok_or_else(|| {
        format!(
            "{} does not change {}",
            patch_path.display(),
            patchfile::KVM_PARA_H
        )
    })?;
    let added = patchfile::added_lines(&section);

    // The header, and where it came from.
    let (header, origin) = match pristine_header(&repo) {
        Some(pristine) => {
            println!("cargo:rerun-if-changed={}", pristine.display());
            println!("cargo:rustc-cfg=ecs_abi_pristine");
            let hunks = patchfile::hunks(&section)?;
            let patched = patchfile::apply(&read(&pristine)?, &hunks).map_err(|e| {
                format!(
                    "{} does not apply to {}: {e}",
                    patch_path.display(),
                    pristine.display()
                )
            })?;
            (
                patched,
                format!("{} with {PATCH_NAME} applied", pristine.display()),
            )
        }
        None => {
            println!(
                "cargo:warning=no pinned kernel tree: checking the lines {PATCH_NAME} adds to kvm_para.h on their own"
            );
            let mut h = String::from(
                "/* The lines the eCS guest patch adds to asm/kvm_para.h (no pinned tree here). */\n\
                 #ifndef ECS_ABI_ADDED_LINES_H\n#define ECS_ABI_ADDED_LINES_H\n#include <linux/types.h>\n",
            );
            for l in &added {
                h.push_str(l);
                h.push('\n');
            }
            h.push_str("#endif\n");
            (h, format!("the lines {PATCH_NAME} adds to kvm_para.h"))
        }
    };
    let include = out.join("include");
    fs::create_dir_all(include.join("asm")).map_err(|e| e.to_string())?;
    let header_path = include.join("asm/kvm_para.h");
    write(&header_path, &header)?;

    let fields = patchfile::struct_fields(&header, STRUCT)?;
    let mut constants: Vec<String> = patchfile::defines(&added);
    for c in PREEXISTING {
        if !constants.iter().any(|n| n == c) {
            constants.push(c.to_string());
        }
    }
    // Where each member would be if nothing were padded: with explicit
    // padding only, every target must put them there.
    let mut packed = Vec::new();
    let mut offset = 0;
    for f in &fields {
        let size = f
            .size()
            .ok_or_else(|| format!("member {} has type {}: use __u32/__u8", f.name, f.ctype))?;
        packed.push((f, offset, size));
        offset += size;
    }

    c_probe(&out, &include, &packed, &constants)?;
    i386_check(&out, &header, &packed)?;
    bindgen(&out, &header_path, &repo)?;

    // What the tests need to know about the header.
    let mut model = String::new();
    writeln!(model, "/// Where the header under test came from.").unwrap();
    writeln!(model, "pub const HEADER_ORIGIN: &str = {origin:?};").unwrap();
    writeln!(model, "/// The guest patch.").unwrap();
    writeln!(model, "pub const PATCH: &str = {patch:?};").unwrap();
    writeln!(model, "/// The header under test.").unwrap();
    writeln!(model, "pub const HEADER: &str = {header:?};").unwrap();
    writeln!(model, "/// The `#define`s the patch adds to kvm_para.h.").unwrap();
    writeln!(
        model,
        "pub const ADDED_DEFINES: &[&str] = &{:?};",
        patchfile::defines(&added)
    )
    .unwrap();
    writeln!(
        model,
        "/// Members of struct {STRUCT}: name, unpadded offset, size."
    )
    .unwrap();
    writeln!(
        model,
        "pub const HEADER_FIELDS: &[(&str, usize, usize)] = &["
    )
    .unwrap();
    for (f, off, size) in &packed {
        writeln!(model, "    ({:?}, {off}, {size}),", f.name).unwrap();
    }
    writeln!(model, "];").unwrap();
    // bindgen's struct, member by member, as the header names them: a
    // member bindgen lacks does not compile.
    writeln!(
        model,
        "/// bindgen's layout of struct {STRUCT}, member by member."
    )
    .unwrap();
    writeln!(
        model,
        "pub fn bindgen_fields() -> Vec<crate::FieldLayout> {{"
    )
    .unwrap();
    writeln!(
        model,
        "    let s = crate::bindgen_ffi::{STRUCT}::default();"
    )
    .unwrap();
    writeln!(model, "    vec![").unwrap();
    for (f, _, _) in &packed {
        let n = &f.name;
        writeln!(
            model,
            "        crate::FieldLayout {{ name: {n:?}, offset: core::mem::offset_of!(crate::bindgen_ffi::{STRUCT}, {n}), size: core::mem::size_of_val(&s.{n}) }},"
        )
        .unwrap();
    }
    writeln!(model, "    ]\n}}").unwrap();
    writeln!(model, "/// bindgen's values of the ABI's constants.").unwrap();
    writeln!(model, "pub const BINDGEN_CONSTANTS: &[(&str, u64)] = &[").unwrap();
    for c in &constants {
        if header_defines(&header, c) {
            writeln!(model, "    ({c:?}, crate::bindgen_ffi::{c}),").unwrap();
        }
    }
    writeln!(model, "];").unwrap();
    write(&out.join("header_model.rs"), &model)
}

/// kvm_para.h of the pinned tree, if it is on this machine.
fn pristine_header(repo: &Path) -> Option<PathBuf> {
    let rel = patchfile::KVM_PARA_H;
    if let Some(src) = env::var_os("ECS_PRISTINE_SRC") {
        let p = PathBuf::from(src).join(rel);
        return p.is_file().then_some(p);
    }
    // scripts/lib/common.sh: $ECS_CACHE/src/$KERNEL_DEBIAN_VERSION
    let pin_path = repo.join("KERNEL_PIN");
    println!("cargo:rerun-if-changed={}", pin_path.display());
    let pin = fs::read_to_string(&pin_path).ok()?;
    let version = pin
        .lines()
        .find_map(|l| l.strip_prefix("KERNEL_DEBIAN_VERSION="))?
        .trim();
    let cache = match env::var_os("ECS_CACHE") {
        Some(c) => PathBuf::from(c),
        None => match env::var_os("XDG_CACHE_HOME") {
            Some(x) => PathBuf::from(x).join("ecs-suite"),
            None => PathBuf::from(env::var_os("HOME")?).join(".cache/ecs-suite"),
        },
    };
    let p = cache.join("src").join(version).join(rel);
    p.is_file().then_some(p)
}

fn header_defines(header: &str, name: &str) -> bool {
    patchfile::defines(&header.lines().collect::<Vec<_>>())
        .iter()
        .any(|n| n == name)
}

/// The C probe: the system compiler's sizeof, alignof and offsetof of
/// every member, and the constants' values, linked into the crate.
fn c_probe(
    out: &Path,
    include: &Path,
    packed: &[(&patchfile::CField, usize, usize)],
    constants: &[String],
) -> Result<(), String> {
    let mut c = String::new();
    c.push_str("/* Generated by build.rs: layout of the eCS ABI as the C compiler sees it. */\n");
    c.push_str("#include <stddef.h>\n#include <asm/kvm_para.h>\n\n");
    c.push_str("struct ecs_probe_field { const char *name; unsigned long long offset, size; };\n");
    c.push_str(
        "struct ecs_probe_const { const char *name; unsigned long long value; int defined; };\n\n",
    );
    c.push_str(&format!(
        "static const struct ecs_probe_field fields[] = {{\n{}}};\n",
        packed
            .iter()
            .map(|(f, _, _)| format!(
                "\t{{ \"{n}\", offsetof(struct {STRUCT}, {n}), sizeof(((struct {STRUCT} *)0)->{n}) }},\n",
                n = f.name
            ))
            .collect::<String>()
    ));
    c.push_str("static const struct ecs_probe_const consts[] = {\n");
    for name in constants {
        c.push_str(&format!(
            "#ifdef {name}\n\t{{ \"{name}\", (unsigned long long)({name}), 1 }},\n#else\n\t{{ \"{name}\", 0, 0 }},\n#endif\n"
        ));
    }
    c.push_str("};\n\n");
    c.push_str(&format!(
        "unsigned long long ecs_probe_sizeof(void) {{ return sizeof(struct {STRUCT}); }}\n\
         unsigned long long ecs_probe_alignof(void) {{ return _Alignof(struct {STRUCT}); }}\n"
    ));
    c.push_str(
        "size_t ecs_probe_nfields(void) { return sizeof(fields) / sizeof(fields[0]); }\n\
         const struct ecs_probe_field *ecs_probe_field(size_t i) { return &fields[i]; }\n\
         size_t ecs_probe_nconsts(void) { return sizeof(consts) / sizeof(consts[0]); }\n\
         const struct ecs_probe_const *ecs_probe_const(size_t i) { return &consts[i]; }\n",
    );
    let probe = out.join("ecs_probe.c");
    write(&probe, &c)?;
    cc::Build::new()
        .file(&probe)
        .include(include)
        .flag_if_supported("-std=gnu11")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .try_compile("ecs_probe")
        .map_err(|e| format!("the C probe does not compile: {e}"))
}

/// The layout on i386 too, where __u64 would be 4-byte aligned: only
/// compile-time asserts, as we cannot run i386 code here. The header
/// includes <linux/types.h>, which wants i386 system headers this machine
/// may lack; its text is compiled after a minimal stand-in instead.
fn i386_check(
    out: &Path,
    header: &str,
    packed: &[(&patchfile::CField, usize, usize)],
) -> Result<(), String> {
    let mut c = String::from(
        "/* Generated by build.rs */\n#include <stddef.h>\n\
         typedef unsigned char __u8; typedef signed char __s8;\n\
         typedef unsigned short __u16; typedef signed short __s16;\n\
         typedef unsigned int __u32; typedef signed int __s32;\n\
         typedef unsigned long long __u64; typedef signed long long __s64;\n",
    );
    for line in header.lines() {
        // <linux/types.h> is replaced by the typedefs above.
        if line.trim_start().starts_with("#include") {
            continue;
        }
        c.push_str(line);
        c.push('\n');
    }
    c.push_str(&format!(
        "_Static_assert(sizeof(struct {STRUCT}) == 64, \"i386: struct {STRUCT} is not 64 bytes\");\n\
         _Static_assert(_Alignof(struct {STRUCT}) == 64, \"i386: struct {STRUCT} is not 64-byte aligned\");\n"
    ));
    for (f, off, _) in packed {
        c.push_str(&format!(
            "_Static_assert(offsetof(struct {STRUCT}, {n}) == {off}, \"i386: implicit padding before {n}\");\n",
            n = f.name
        ));
    }
    let src = out.join("ecs_i386_check.c");
    write(&src, &c)?;
    let compiler = cc::Build::new().get_compiler();
    let status = compiler
        .to_command()
        .args(["-m32", "-std=gnu11", "-fsyntax-only"])
        .arg(&src)
        .status()
        .map_err(|e| format!("cannot run the C compiler: {e}"))?;
    if !status.success() {
        return Err(format!(
            "struct {STRUCT} is not 64 bytes with explicit padding only on i386 (see {})",
            src.display()
        ));
    }
    Ok(())
}

fn bindgen(out: &Path, header: &Path, repo: &Path) -> Result<(), String> {
    if env::var_os("LIBCLANG_PATH").is_none() {
        // The LLVM of KERNEL_PIN, as in the Makefile. Only this build
        // script reads it, and it is single-threaded here.
        let llvm = fs::read_to_string(repo.join("KERNEL_PIN"))
            .ok()
            .and_then(|pin| {
                pin.lines()
                    .find_map(|l| l.strip_prefix("LLVM_VERSION="))
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_else(|| "19".to_string());
        env::set_var("LIBCLANG_PATH", format!("/usr/lib/llvm-{llvm}/lib"));
    }
    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_arg(format!(
            "-I{}",
            header.parent().unwrap().parent().unwrap().display()
        ))
        .allowlist_type(STRUCT)
        .allowlist_var(
            "KVM_FEATURE_ECS|MSR_KVM_ECS(_.*)?|KVM_ECS_.*|KVM_MSR_ENABLED|KVM_CPUID_FEATURES",
        )
        .derive_default(true)
        .derive_debug(true)
        .use_core()
        .parse_callbacks(Box::new(AllU64))
        .generate()
        .map_err(|e| format!("bindgen cannot read {}: {e}", header.display()))?;
    bindings
        .write_to_file(out.join("bindings.rs"))
        .map_err(|e| e.to_string())
}

/// Every macro constant as u64, so that all three sources compare alike.
#[derive(Debug)]
struct AllU64;

impl bindgen::callbacks::ParseCallbacks for AllU64 {
    fn int_macro(&self, _name: &str, _value: i64) -> Option<bindgen::callbacks::IntKind> {
        Some(bindgen::callbacks::IntKind::U64)
    }
}

fn read(p: &Path) -> Result<String, String> {
    fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

fn write(p: &Path, text: &str) -> Result<(), String> {
    fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
}
