fn main() -> std::process::ExitCode {
    entente_media::not_built("entente-offloader")
}
