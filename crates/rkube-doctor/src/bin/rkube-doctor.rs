//! `rkube-doctor`: the doctor alone, the same as `rkube doctor` (this crate's integration tests run it inside
//! network namespaces without building the whole rkube binary).

use clap::Parser;

#[derive(Parser)]
#[command(name = "rkube-doctor", about = "Checks this host for rkube; exit 0 unless something FAILs.")]
struct Cli {
    #[command(flatten)]
    args: rkube_doctor::cli::Args,
}

fn main() {
    let cli = Cli::parse();
    let code = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(rkube_doctor::cli::run(&cli.args)),
        Err(e) => {
            eprintln!("rkube-doctor: cannot start a runtime: {e}");
            2
        }
    };
    std::process::exit(code);
}
