//! `embed_migrations!` reads the SQL at compile time; tell cargo to rebuild
//! when it changes.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
