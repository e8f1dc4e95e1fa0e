// SPDX-License-Identifier: GPL-2.0

//! The header that the guest patch defines, as the C compiler sees it (the
//! probe), as bindgen reads it and as the Rust mirror declares it: all three
//! must agree on the size, the alignment, every member and every constant.

use ecs_abi::patchfile::{self, CField};
use ecs_abi::{c_probe, header, FieldLayout, CONSTANTS, KVM_ECS_FIELDS};
use std::collections::BTreeMap;

fn mirror_constant(name: &str) -> Option<u64> {
    CONSTANTS.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

#[test]
fn header_origin() {
    // Shows in `cargo test -- --nocapture`: which header the run checked.
    println!("header under test: {}", header::HEADER_ORIGIN);
    assert!(header::HEADER.contains("struct kvm_ecs {"));
}

#[test]
fn size_and_alignment_agree() {
    let mirror = (size_of::<ecs_abi::KvmEcs>(), align_of::<ecs_abi::KvmEcs>());
    let bindgen = (
        size_of::<ecs_abi::bindgen_ffi::kvm_ecs>(),
        align_of::<ecs_abi::bindgen_ffi::kvm_ecs>(),
    );
    let c = (c_probe::size(), c_probe::align());
    assert_eq!(c, (64, 64), "C: sizeof, _Alignof of struct kvm_ecs");
    assert_eq!(bindgen, c, "bindgen vs C");
    assert_eq!(mirror, c, "Rust mirror vs C");
}

fn check_same(what: &str, got: &[FieldLayout], want: &[FieldLayout]) {
    let names = |v: &[FieldLayout]| v.iter().map(|f| f.name).collect::<Vec<_>>();
    assert_eq!(names(got), names(want), "{what}: members (name and order)");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w, "{what}: member {}", w.name);
    }
}

#[test]
fn every_member_agrees() {
    let c = c_probe::fields();
    assert!(!c.is_empty());
    check_same("bindgen vs C", &header::bindgen_fields(), &c);
    check_same("Rust mirror vs C", KVM_ECS_FIELDS, &c);
}

#[test]
fn header_has_only_explicit_padding() {
    // Unpadded offsets from the header's text equal the compiler's.
    let c = c_probe::fields();
    let text: Vec<_> = header::HEADER_FIELDS
        .iter()
        .map(|&(name, offset, size)| FieldLayout { name, offset, size })
        .collect();
    check_same("header text vs C", &text, &c);
    let end = c.last().map(|f| f.offset + f.size);
    assert_eq!(end, Some(c_probe::size()), "no tail padding");
}

#[test]
fn header_uses_only_u32_and_u8() {
    for f in patchfile::struct_fields(header::HEADER, "kvm_ecs").unwrap() {
        assert!(
            f.ctype == "__u32" || f.ctype == "__u8",
            "{} is {}: the ABI allows __u32 and __u8 only",
            f.name,
            f.ctype
        );
    }
}

#[test]
fn every_constant_agrees() {
    let c: BTreeMap<_, _> = c_probe::constants().into_iter().collect();
    let bindgen: BTreeMap<_, _> = header::BINDGEN_CONSTANTS.iter().copied().collect();
    assert!(!header::ADDED_DEFINES.is_empty());
    for name in header::ADDED_DEFINES {
        let value = c[name].unwrap_or_else(|| panic!("{name}: not defined for the C compiler"));
        assert_eq!(bindgen.get(name), Some(&value), "{name}: bindgen vs C");
        assert_eq!(
            mirror_constant(name),
            Some(value),
            "{name}: Rust mirror vs C"
        );
    }
    // Constants the patch does not add but the ABI uses: only the whole
    // header (pinned tree present) has them.
    for name in ["KVM_CPUID_FEATURES", "KVM_MSR_ENABLED"] {
        match c[name] {
            Some(value) => {
                assert_eq!(bindgen.get(name), Some(&value), "{name}: bindgen vs C");
                assert_eq!(
                    mirror_constant(name),
                    Some(value),
                    "{name}: Rust mirror vs C"
                );
            }
            None if cfg!(ecs_abi_pristine) => {
                panic!("{name} missing from the patched kvm_para.h")
            }
            None => {}
        }
    }
    // And the mirror has nothing the header lacks.
    for (name, _) in CONSTANTS {
        assert!(
            c.contains_key(name),
            "{name}: the mirror has it, the probe does not ask"
        );
    }
}

/// `#define NAME value` lines of the header whose name starts with
/// `prefix`, with the value as the C compiler would read a plain number.
fn numeric_defines(prefix: &str) -> Vec<(String, u64)> {
    header::HEADER
        .lines()
        .filter_map(|l| {
            let mut words = l.strip_prefix("#define ")?.split_whitespace();
            let name = words.next()?;
            let value = words.next()?;
            if !name.starts_with(prefix) || words.next().is_some() {
                return None;
            }
            let v = match value.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok()?,
                None => value.parse().ok()?,
            };
            Some((name.to_string(), v))
        })
        .collect()
}

#[test]
fn msr_and_feature_bit_collide_with_nothing() {
    if !cfg!(ecs_abi_pristine) {
        eprintln!("only the patch's lines here: nothing to collide with");
        return;
    }
    let features = numeric_defines("KVM_FEATURE_");
    assert!(features.len() > 10, "the whole header is here");
    let msrs = numeric_defines("MSR_KVM_");
    for (what, all, ours) in [
        ("feature bit", &features, "KVM_FEATURE_ECS"),
        ("MSR", &msrs, "MSR_KVM_ECS"),
        ("MSR", &msrs, "MSR_KVM_ECS_WORD"),
    ] {
        assert!(
            all.iter().any(|(n, _)| n == ours),
            "{ours} is not a plain #define of the header"
        );
        let value = mirror_constant(ours).unwrap();
        let same: Vec<_> = all.iter().filter(|(_, v)| *v == value).collect();
        assert_eq!(same.len(), 1, "{what} {value:#x} is also used by {same:?}");
    }
}

#[test]
fn patch_only_adds_to_the_three_files() {
    let paths = patchfile::changed_paths(header::PATCH);
    assert_eq!(
        paths,
        [
            "Documentation/virt/kvm/x86/cpuid.rst",
            "Documentation/virt/kvm/x86/msr.rst",
            patchfile::KVM_PARA_H
        ]
    );
    for p in &paths {
        let section = patchfile::file_section(header::PATCH, p).unwrap();
        assert_eq!(
            patchfile::removed_lines(&section),
            Vec::<String>::new(),
            "{p}: lines removed"
        );
    }
    // "[PATCH]" alone or numbered within the series ("[PATCH 01/10]"),
    // however git folded the header.
    let subject = subject(header::PATCH);
    assert!(
        subject.starts_with("[PATCH")
            && subject
                .ends_with("] x86/kvm: Add the enlightened critical section (eCS) paravirt ABI"),
        "Subject: {subject}"
    );
    assert!(header::PATCH.contains("\nSigned-off-by: eCS suite developers <ecs@invalid>\n"));
}

/// The patch's Subject header, unfolded (RFC 5322: a line that starts with
/// white space continues the previous one).
fn subject(patch: &str) -> String {
    let mut lines = patch.lines().skip_while(|l| !l.starts_with("Subject: "));
    let mut subject = lines
        .next()
        .expect("the patch has a Subject header")
        .trim_start_matches("Subject: ")
        .to_string();
    for l in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        subject.push(' ');
        subject.push_str(l.trim());
    }
    subject
}

#[test]
fn kvm_steal_time_is_untouched() {
    let section = patchfile::file_section(header::PATCH, patchfile::KVM_PARA_H).unwrap();
    let added = patchfile::added_lines(&section).join("\n");
    assert!(
        !added.contains("kvm_steal_time"),
        "the patch must not touch struct kvm_steal_time"
    );
    if cfg!(ecs_abi_pristine) {
        let f = |name: &str, ctype: &str, count| CField {
            name: name.into(),
            ctype: ctype.into(),
            count,
        };
        assert_eq!(
            patchfile::struct_fields(header::HEADER, "kvm_steal_time").unwrap(),
            [
                f("steal", "__u64", 1),
                f("version", "__u32", 1),
                f("flags", "__u32", 1),
                f("preempted", "__u8", 1),
                f("u8_pad", "__u8", 3),
                f("pad", "__u32", 11),
            ]
        );
    }
}

#[test]
fn documentation_matches_the_header() {
    // msr.rst repeats the struct; it must be the header's, member for member.
    let section =
        patchfile::file_section(header::PATCH, "Documentation/virt/kvm/x86/msr.rst").unwrap();
    let doc = patchfile::added_lines(&section).join("\n");
    assert_eq!(
        patchfile::struct_fields(&doc, "kvm_ecs").unwrap(),
        patchfile::struct_fields(header::HEADER, "kvm_ecs").unwrap()
    );
    let msrs = [ecs_abi::MSR_KVM_ECS, ecs_abi::MSR_KVM_ECS_WORD].map(|m| format!("{m:#x}"));
    for msr in &msrs {
        assert!(doc.contains(msr), "msr.rst names {msr}");
    }
    let section =
        patchfile::file_section(header::PATCH, "Documentation/virt/kvm/x86/cpuid.rst").unwrap();
    let row = patchfile::added_lines(&section).join("\n");
    let want = format!(
        "KVM_FEATURE_ECS                    {}",
        ecs_abi::KVM_FEATURE_ECS
    );
    assert!(row.contains(&want), "cpuid.rst row: {row}");
    for msr in &msrs {
        assert!(row.contains(msr), "cpuid.rst names {msr}");
    }
}

/// The bits a mask covers as msr.rst writes them: "bit 1", "bits 63:6".
fn bit_range(mask: u64) -> String {
    let (lo, hi) = (mask.trailing_zeros(), 63 - mask.leading_zeros());
    assert_eq!(
        mask,
        (u64::MAX >> (63 - hi)) & (u64::MAX << lo),
        "{mask:#x} is not one run of bits"
    );
    if lo == hi {
        format!("bit {lo}")
    } else {
        format!("bits {hi}:{lo}")
    }
}

/// The lines the patch adds to msr.rst, as one line with white space folded.
fn msr_rst_added_text() -> String {
    let section =
        patchfile::file_section(header::PATCH, "Documentation/virt/kvm/x86/msr.rst").unwrap();
    patchfile::added_lines(&section)
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn documentation_gives_the_masks_bits() {
    // msr.rst says which bits each constant covers, "Bits 63:6
    // (KVM_ECS_GPA_MASK)": the mirror's (and so the header's) values.
    let doc = msr_rst_added_text().to_lowercase();
    for (name, mask) in [
        ("KVM_MSR_ENABLED", ecs_abi::KVM_MSR_ENABLED),
        ("KVM_ECS_GPA_MASK", ecs_abi::KVM_ECS_GPA_MASK),
        ("KVM_ECS_GIVE_BACK", ecs_abi::KVM_ECS_GIVE_BACK),
        ("KVM_ECS_RESERVED_MASK", ecs_abi::KVM_ECS_RESERVED_MASK),
        ("KVM_ECS_WORD_GPA_MASK", ecs_abi::KVM_ECS_WORD_GPA_MASK),
        (
            "KVM_ECS_WORD_RESERVED_MASK",
            ecs_abi::KVM_ECS_WORD_RESERVED_MASK,
        ),
    ] {
        let want = format!("{} ({})", bit_range(mask), name).to_lowercase();
        assert!(doc.contains(&want), "msr.rst does not say \"{want}\"");
    }
    // Every constant the patch adds but the alignment is documented.
    for name in header::ADDED_DEFINES {
        if *name != "KVM_ECS_ALIGNMENT_BITS" {
            assert!(doc.contains(&name.to_lowercase()), "msr.rst lacks {name}");
        }
    }
}

#[test]
fn documentation_gives_the_critical_section_test() {
    // msr.rst's definition of "in a critical section" uses the members the
    // header declares, and the word MSR.
    let doc = msr_rst_added_text();
    let want = "nonpreemptible_count != 0 || preemptible_count != 0 || \
                (MSR_KVM_ECS_WORD enabled && (word & word_mask) != word_base)";
    assert!(doc.contains(want), "msr.rst does not say {want}");
    let fields = patchfile::struct_fields(header::HEADER, "kvm_ecs").unwrap();
    for member in [
        "nonpreemptible_count",
        "preemptible_count",
        "word_mask",
        "word_base",
    ] {
        assert!(
            fields.iter().any(|f| f.name == member),
            "struct kvm_ecs lacks {member}"
        );
    }
}
