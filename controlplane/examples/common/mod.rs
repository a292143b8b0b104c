//! What the bench programs share: the `--store URL` option.

/// Take `--store URL` out of `args`: the URL, or `embedded` when absent.
pub fn take_store_arg(args: &mut Vec<String>) -> Result<String, String> {
    match args.iter().position(|a| a == "--store") {
        Some(i) if i + 1 < args.len() => Ok(args.drain(i..i + 2).nth(1).unwrap_or_default()),
        Some(_) => Err("--store needs a URL: embedded or etcd://HOST:PORT/PREFIX".into()),
        None => Ok("embedded".to_owned()),
    }
}
