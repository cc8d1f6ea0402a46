//! The `h2mux` command-line tool. Not built yet: see README's status table.
fn main() {
    eprintln!("h2mux: the command-line tool is not built yet; see README.md");
    std::process::exit(2);
}
