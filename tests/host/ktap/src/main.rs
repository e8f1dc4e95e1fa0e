// SPDX-License-Identifier: GPL-2.0

//! `ktap-summary FILE...`: print kselftest totals over nested KTAP files and
//! exit 1 if any test failed or any plan was not met.

use std::process::ExitCode;

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: ktap-summary FILE...");
        return ExitCode::from(2);
    }
    let mut text = String::new();
    for path in &paths {
        match std::fs::read_to_string(path) {
            Ok(t) => text.push_str(&t),
            Err(e) => {
                eprintln!("ktap-summary: {path}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let report = ecs_ktap::parse(&text);
    for failure in report.failures() {
        println!("# FAILED: {failure}");
    }
    for m in &report.plan_mismatches {
        println!(
            "# FAILED: a plan at depth {} announced {} tests but {} ran",
            m.depth, m.planned, m.ran
        );
    }
    let t = report.totals();
    println!(
        "# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:0",
        t.pass, t.fail, t.skip
    );
    println!("{} passed, {} failed, {} skipped", t.pass, t.fail, t.skip);
    if t.fail > 0 || t.pass + t.skip == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
