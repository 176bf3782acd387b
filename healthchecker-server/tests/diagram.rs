//! `img/statemachine.svg` is what `draw::state_machine_svg()` draws from the state machine's
//! table: change the table (or the layout) and this test says how to redraw the picture.
//!
//! The drawing code lives here (`tests/diagram/draw.rs`), not in the server: the picture is for
//! the README, and the server holds only what runs.

#[path = "diagram/draw.rs"]
mod draw;

use std::path::PathBuf;

use draw::state_machine_svg;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../img/statemachine.svg")
}

#[test]
fn the_committed_picture_is_up_to_date() {
    let path = committed_path();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == state_machine_svg(),
        "{} is not what the state machine's table draws; regenerate it with\n    \
         cargo test -p healthchecker-server --test diagram -- --ignored\nand commit it",
        path.display()
    );
}

/// Writes `img/statemachine.svg`.
#[test]
#[ignore = "writes img/statemachine.svg; run it when the table or the layout changed"]
fn regenerate_diagram() {
    let path = committed_path();
    std::fs::write(&path, state_machine_svg()).expect("write img/statemachine.svg");
    println!("wrote {}", path.display());
}
