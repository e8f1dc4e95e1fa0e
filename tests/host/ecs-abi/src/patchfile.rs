// SPDX-License-Identifier: GPL-2.0

//! Just enough of unified diffs and of C headers to treat the guest patch
//! as the single source of truth for the ABI.
//!
//! build.rs includes this file as a module too (std only, no crates), so
//! the header that is checked at build time and the one the tests reason
//! about come out of the same code.

/// The header the guest patch defines the ABI in.
pub const KVM_PARA_H: &str = "arch/x86/include/uapi/asm/kvm_para.h";

/// The lines of `patch` that change `path`: from its `diff --git` line up
/// to the next file's, or to the `-- ` line of a format-patch signature.
pub fn file_section<'a>(patch: &'a str, path: &str) -> Option<Vec<&'a str>> {
    let start = format!("diff --git a/{path} b/{path}");
    let mut lines = patch.lines().skip_while(|l| *l != start);
    let first = lines.next()?;
    let mut section = vec![first];
    for line in lines {
        if line.starts_with("diff --git ") || line == "-- " {
            break;
        }
        section.push(line);
    }
    Some(section)
}

/// The paths a patch changes, from its `diff --git a/X b/X` lines.
pub fn changed_paths(patch: &str) -> Vec<String> {
    patch
        .lines()
        .filter_map(|l| l.strip_prefix("diff --git a/"))
        .filter_map(|rest| rest.split_once(" b/").map(|(a, _)| a.to_string()))
        .collect()
}

/// One hunk of a unified diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// First line of the hunk in the old file, 1-based (0 for an empty file).
    pub old_start: usize,
    /// Each line with its marker: ' ' context, '-' removed, '+' added.
    pub lines: Vec<(char, String)>,
}

/// The hunks of one file's section of a diff.
pub fn hunks(section: &[&str]) -> Result<Vec<Hunk>, String> {
    let mut out: Vec<Hunk> = Vec::new();
    for line in section {
        if let Some(rest) = line.strip_prefix("@@ -") {
            let old = rest.split(' ').next().unwrap_or("");
            let start = old.split(',').next().unwrap_or("");
            let old_start = start
                .parse()
                .map_err(|_| format!("bad hunk header '{line}'"))?;
            out.push(Hunk {
                old_start,
                lines: Vec::new(),
            });
            continue;
        }
        let Some(hunk) = out.last_mut() else {
            continue; // diff --git, index, ---, +++ lines before the first hunk
        };
        if line.starts_with('\\') {
            continue; // "\ No newline at end of file"
        }
        let (marker, text) = match line.chars().next() {
            None => (' ', ""), // some mailers eat the space of an empty context line
            Some(c @ (' ' | '-' | '+')) => (c, &line[1..]),
            Some(_) => return Err(format!("unexpected line in hunk: '{line}'")),
        };
        hunk.lines.push((marker, text.to_string()));
    }
    if out.is_empty() {
        return Err("no hunks".to_string());
    }
    Ok(out)
}

/// Apply `hunks` to `original` strictly: every context and removed line must
/// be where the hunk says (no offset, no fuzz), as on the pinned tree.
pub fn apply(original: &str, hunks: &[Hunk]) -> Result<String, String> {
    let old: Vec<&str> = original.lines().collect();
    let mut new: Vec<String> = Vec::new();
    let mut next = 0; // index into `old` of the first line not yet copied
    for h in hunks {
        let start = h.old_start.saturating_sub(1);
        if start < next || start > old.len() {
            return Err(format!("hunk at line {} is out of order", h.old_start));
        }
        new.extend(old[next..start].iter().map(|s| s.to_string()));
        let mut pos = start;
        for (marker, text) in &h.lines {
            match marker {
                '+' => new.push(text.clone()),
                _ => {
                    let have = old.get(pos).copied();
                    if have != Some(text.as_str()) {
                        return Err(format!(
                            "hunk at line {} does not apply: line {} is {:?}, the patch expects {:?}",
                            h.old_start,
                            pos + 1,
                            have.unwrap_or("<end of file>"),
                            text
                        ));
                    }
                    if *marker == ' ' {
                        new.push(text.clone());
                    }
                    pos += 1;
                }
            }
        }
        next = pos;
    }
    new.extend(old[next..].iter().map(|s| s.to_string()));
    let mut text = new.join("\n");
    if original.ends_with('\n') || original.is_empty() {
        text.push('\n');
    }
    Ok(text)
}

/// The lines a file's section adds, without their `+`.
pub fn added_lines(section: &[&str]) -> Vec<String> {
    section
        .iter()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++ "))
        .map(|l| l[1..].to_string())
        .collect()
}

/// The lines a file's section removes, without their `-`.
pub fn removed_lines(section: &[&str]) -> Vec<String> {
    section
        .iter()
        .filter(|l| l.starts_with('-') && !l.starts_with("--- "))
        .map(|l| l[1..].to_string())
        .collect()
}

/// Names of the object-like macros `#define`d in `lines`.
pub fn defines<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = l.as_ref().trim_start().strip_prefix('#')?;
            let rest = rest.trim_start().strip_prefix("define")?;
            if !rest.starts_with([' ', '\t']) {
                return None;
            }
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // A function-like macro has '(' right after its name.
            let after = rest.trim_start()[name.len()..].chars().next();
            (!name.is_empty() && after != Some('(')).then_some(name)
        })
        .collect()
}

/// A member of a C struct made of plain scalar and array members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CField {
    pub name: String,
    pub ctype: String,
    /// Array length, 1 for a scalar.
    pub count: usize,
}

impl CField {
    /// Size in bytes, for the fixed-width uapi types (`__u8` .. `__s64`).
    pub fn size(&self) -> Option<usize> {
        let elem = match self.ctype.as_str() {
            "__u8" | "__s8" => 1,
            "__u16" | "__s16" => 2,
            "__u32" | "__s32" => 4,
            "__u64" | "__s64" => 8,
            _ => return None,
        };
        Some(elem * self.count)
    }
}

/// The members of `struct NAME { ... }` in `header`, in order. Knows
/// comments, scalars and one-dimensional arrays; enough for uapi structs.
pub fn struct_fields(header: &str, name: &str) -> Result<Vec<CField>, String> {
    let text = strip_comments(header);
    let open = format!("struct {name} {{");
    let start = text
        .find(&open)
        .ok_or_else(|| format!("no '{open}' in the header"))?
        + open.len();
    let end = start
        + text[start..]
            .find('}')
            .ok_or_else(|| format!("struct {name} is not closed"))?;
    let mut fields = Vec::new();
    for decl in text[start..end].split(';') {
        let decl = decl.split_whitespace().collect::<Vec<_>>().join(" ");
        if decl.is_empty() {
            continue;
        }
        let (ctype, declarator) = decl
            .rsplit_once(' ')
            .ok_or_else(|| format!("cannot read member '{decl}'"))?;
        let (field, count) = match declarator.split_once('[') {
            None => (declarator.to_string(), 1),
            Some((n, dim)) => {
                let dim = dim.trim_end_matches(']');
                let count = dim
                    .parse()
                    .map_err(|_| format!("array size '{dim}' of {n} is not a number"))?;
                (n.to_string(), count)
            }
        };
        if ctype.contains(' ')
            || field.is_empty()
            || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!("cannot read member '{decl}'"));
        }
        fields.push(CField {
            name: field,
            ctype: ctype.to_string(),
            count,
        });
    }
    Ok(fields)
}

fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].find("*/") {
            Some(j) => rest = &rest[i + 2 + j + 2..],
            None => return out,
        }
        out.push(' ');
    }
    out.push_str(rest);
    out
}
