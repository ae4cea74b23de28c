//! The migrations are compiled into the crate (`sqlx::migrate!`), but cargo only notices changed
//! Rust sources: without this, a build after adding a migration would keep the old set.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
