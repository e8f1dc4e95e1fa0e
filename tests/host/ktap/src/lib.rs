// SPDX-License-Identifier: GPL-2.0

//! A tolerant parser for nested KTAP (Documentation/dev-tools/ktap.rst) as
//! our selftests print it, and the kselftest-style totals over its leaves.

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

/// One result line, with its place in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// Nesting depth: 0 for the top level, one more per four-space indent.
    pub depth: usize,
    pub number: u32,
    pub name: String,
    pub outcome: Outcome,
    /// The text after `# SKIP`, or after any other `#` directive.
    pub directive: Option<String>,
    /// Whether results of a subtest came right before this line: then the
    /// subtest's leaves are counted rather than this line.
    pub has_subtests: bool,
}

/// A plan (`1..N`) that the results at its level did not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanMismatch {
    pub depth: usize,
    pub planned: u32,
    pub ran: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub results: Vec<TestResult>,
    pub plan_mismatches: Vec<PlanMismatch>,
}

/// Totals in the kselftest sense: leaves are counted, and so is any parent
/// that failed although none of its subtests did (a crash or timeout that
/// cut the subtest short), and any plan that was not met.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub pass: u32,
    pub fail: u32,
    pub skip: u32,
}

fn depth_and_body(line: &str) -> (usize, &str) {
    let trimmed = line.trim_start_matches(' ');
    let spaces = line.len() - trimmed.len();
    (spaces / 4, trimmed.trim_end())
}

fn parse_plan(body: &str) -> Option<u32> {
    let rest = body.strip_prefix("1..")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn parse_result(depth: usize, body: &str) -> Option<TestResult> {
    let (passed, rest) = if let Some(r) = body.strip_prefix("not ok ") {
        (false, r)
    } else if let Some(r) = body.strip_prefix("ok ") {
        (true, r)
    } else {
        return None;
    };
    let (number, rest) = match rest.find(' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let number: u32 = number.parse().ok()?;
    let (name, directive) = match rest
        .find(" # ")
        .or_else(|| rest.strip_prefix("# ").map(|_| 0))
    {
        Some(i) => {
            let d = rest[i..].trim_start_matches(' ').trim_start_matches("# ");
            (rest[..i].trim(), Some(d.to_string()))
        }
        None => (rest.trim(), None),
    };
    let name = name.trim_start_matches("- ").to_string();
    let is_skip = directive
        .as_deref()
        .is_some_and(|d| d.get(..4).is_some_and(|w| w.eq_ignore_ascii_case("skip")));
    let outcome = match (passed, is_skip) {
        (_, true) => Outcome::Skip,
        (true, false) => Outcome::Pass,
        (false, false) => Outcome::Fail,
    };
    Some(TestResult {
        depth,
        number,
        name,
        outcome,
        directive,
        has_subtests: false,
    })
}

/// Parses KTAP text; lines that are not KTAP (console noise) are ignored.
pub fn parse(text: &str) -> Report {
    let mut report = Report::default();
    // Per depth: the plan seen and the results counted since.
    let mut plans: Vec<Option<(u32, u32)>> = Vec::new();

    let close_levels_below =
        |report: &mut Report, plans: &mut Vec<Option<(u32, u32)>>, depth: usize| {
            while plans.len() > depth + 1 {
                if let Some(Some((planned, ran))) = plans.pop() {
                    if planned != ran {
                        report.plan_mismatches.push(PlanMismatch {
                            depth: plans.len(),
                            planned,
                            ran,
                        });
                    }
                }
            }
        };

    for line in text.lines() {
        let (depth, body) = depth_and_body(line);
        if body.starts_with("TAP version") || body.starts_with("KTAP version") {
            // A new (sub)test starts at this depth: forget its old plan.
            close_levels_below(&mut report, &mut plans, depth.saturating_sub(1));
            if plans.len() <= depth {
                plans.resize(depth + 1, None);
            }
            plans[depth] = None;
            continue;
        }
        if let Some(planned) = parse_plan(body) {
            if plans.len() <= depth {
                plans.resize(depth + 1, None);
            }
            plans[depth] = Some((planned, 0));
            continue;
        }
        if let Some(mut result) = parse_result(depth, body) {
            // A subtest's results come right before its parent's line.
            result.has_subtests = report.results.last().is_some_and(|prev| prev.depth > depth);
            close_levels_below(&mut report, &mut plans, depth);
            if let Some(Some((_, ran))) = plans.get_mut(depth) {
                *ran += 1;
            }
            report.results.push(result);
        }
    }
    close_levels_below(&mut report, &mut plans, 0);
    if let Some(Some((planned, ran))) = plans.first() {
        if planned != ran {
            report.plan_mismatches.push(PlanMismatch {
                depth: 0,
                planned: *planned,
                ran: *ran,
            });
        }
    }
    report
}

impl Report {
    /// Whether result `i` stands for a failure of its own: a failed leaf,
    /// or a failed parent none of whose subtests failed.
    fn is_own_failure(&self, i: usize) -> bool {
        let r = &self.results[i];
        if r.outcome != Outcome::Fail {
            return false;
        }
        !r.has_subtests
            || !self.results[..i]
                .iter()
                .rev()
                .take_while(|c| c.depth > r.depth)
                .any(|c| c.outcome == Outcome::Fail)
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for (i, r) in self.results.iter().enumerate() {
            match r.outcome {
                Outcome::Pass if !r.has_subtests => t.pass += 1,
                Outcome::Skip if !r.has_subtests => t.skip += 1,
                Outcome::Fail if self.is_own_failure(i) => t.fail += 1,
                _ => {}
            }
        }
        t.fail += self.plan_mismatches.len() as u32;
        t
    }

    /// Every failure [`Report::totals`] counts, named with its parents.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, r) in self.results.iter().enumerate() {
            if !self.is_own_failure(i) {
                continue;
            }
            let mut path = vec![r.name.clone()];
            let mut depth = r.depth;
            for later in &self.results[i + 1..] {
                if later.depth < depth {
                    path.push(later.name.clone());
                    depth = later.depth;
                }
            }
            path.reverse();
            out.push(path.join(" / "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(pass: u32, fail: u32, skip: u32) -> Totals {
        Totals { pass, fail, skip }
    }

    const NESTED: &str = "\
TAP version 13
1..3
    TAP version 13
    1..2
    ok 1 load
    not ok 2 report-present
ok 1 pvinfo # exit=1
    TAP version 13
    1..0 # SKIP no svm
ok 2 l2_boot # SKIP
[   12.3] random console noise
ok 3 plain
";

    #[test]
    fn counts_leaves_not_parents() {
        let r = parse(NESTED);
        assert_eq!(r.results.len(), 5);
        assert_eq!(r.totals(), totals(2, 1, 1));
        assert!(r.plan_mismatches.is_empty());
    }

    #[test]
    fn names_failures_with_their_parents() {
        assert_eq!(parse(NESTED).failures(), vec!["pvinfo / report-present"]);
    }

    #[test]
    fn skip_directive_in_any_case() {
        let r = parse("1..2\nok 1 a # SKIP no kvm\nok 2 b # skip later\n");
        assert_eq!(r.totals(), totals(0, 0, 2));
        assert_eq!(r.results[0].directive.as_deref(), Some("SKIP no kvm"));
    }

    #[test]
    fn failed_parent_with_passing_children_still_fails() {
        // The runner failed the test (say, a timeout) after its subtests passed.
        let r = parse("1..1\n    1..1\n    ok 1 a\nnot ok 1 t # exit=124\n");
        assert_eq!(r.totals(), totals(1, 1, 0));
        assert_eq!(r.failures(), vec!["t"]);
    }

    #[test]
    fn unmet_plan_is_a_failure() {
        let r = parse("TAP version 13\n1..3\nok 1 a\nok 2 b\n");
        assert_eq!(
            r.plan_mismatches,
            vec![PlanMismatch {
                depth: 0,
                planned: 3,
                ran: 2
            }]
        );
        assert_eq!(r.totals().fail, 1);
    }

    #[test]
    fn unmet_subtest_plan_is_a_failure() {
        let r = parse("1..1\n    1..2\n    ok 1 a\nok 1 t\n");
        assert_eq!(
            r.plan_mismatches,
            vec![PlanMismatch {
                depth: 1,
                planned: 2,
                ran: 1
            }]
        );
        assert_eq!(r.totals(), totals(1, 1, 0));
    }

    #[test]
    fn three_levels_deep() {
        let text = "1..1\n    1..1\n        1..2\n        ok 1 x\n        ok 2 y\n    ok 1 l2\nok 1 nested\n";
        let r = parse(text);
        assert_eq!(r.totals(), totals(2, 0, 0));
        assert!(r.plan_mismatches.is_empty());
    }

    #[test]
    fn ignores_lines_that_only_look_like_results() {
        let r = parse("1..1\nok x not a number\nokay 1\nok 1 real\n");
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.results[0].name, "real");
    }
}
