//! The hostile TrainingJob corpus (`tests/data/hostile-jobs/`) through the control
//! API's Submit conversion: every file that reads as a TrainingJob is refused there too,
//! with the same message ebbctl gives (tests/up_e2e.rs runs the files through ebbctl).

use ebb::api::convert::{job_spec, training_job};
use ebb::resource::manifest::parse_training_job;

/// Zero values a proto3 message cannot tell from absent fields: Submit takes them as
/// the documented defaults (proto/ebb/v1/control.proto, JobSpec), so only ebbctl, which
/// reads the file, can refuse them.
const ZERO_MEANS_ABSENT: [&str; 3] = ["zero-passes.yaml", "zero-weight.yaml", "empty-image.yaml"];

#[test]
fn submit_refuses_every_hostile_file_that_reads_as_a_training_job() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile-jobs");
    let mut through_submit = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // not text: ebbctl refuses to read it
        };
        let expect = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("# expect:")
            .trim()
            .to_string();
        let Ok(tj) = parse_training_job(&name, &text) else {
            continue; // refused before any RPC
        };
        let submitted = training_job(&job_spec(&tj));
        if ZERO_MEANS_ABSENT.contains(&name.as_str()) {
            assert!(submitted.is_ok(), "{name}: a zero here is the default");
            continue;
        }
        let e = submitted.expect_err(&name);
        assert!(
            e.message().contains(&expect),
            "{name}: expected {expect:?} in {}",
            e.message()
        );
        through_submit += 1;
    }
    assert!(
        through_submit >= 10,
        "only {through_submit} files reached Submit"
    );
}
