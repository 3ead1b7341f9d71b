//! The local object store of `entente up`: an S3 endpoint (s3s-fs) over a
//! directory, with credentials generated once, so the server talks S3 here
//! exactly as it does to a real store.

use std::path::Path;

use hyper_util::{rt::TokioExecutor, server::conn::auto::Builder as ConnBuilder};
use s3s::{auth::SimpleAuth, service::S3ServiceBuilder};

use super::{files::secret_text, UpError};

pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The credentials of a store the user named, from the environment.
pub fn from_environment() -> Result<Credentials, UpError> {
    let var = |name: &str| {
        std::env::var(name).map_err(|_| {
            UpError(format!(
                "--s3-endpoint needs the store's credentials in {name}"
            ))
        })
    };
    Ok(Credentials {
        access_key_id: var("AWS_ACCESS_KEY_ID")?,
        secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
    })
}

/// Starts the endpoint on `listener`; it serves until the runtime stops.
pub fn start(root: &Path, listener: tokio::net::TcpListener) -> Result<Credentials, UpError> {
    let objects = root.join("objects");
    std::fs::create_dir_all(&objects)
        .map_err(|e| UpError(format!("{}: {e}", objects.display())))?;
    let credentials = Credentials {
        access_key_id: secret_text(&root.join("s3").join("access-key-id"), 20)?,
        secret_access_key: secret_text(&root.join("s3").join("secret-access-key"), 40)?,
    };
    let fs = s3s_fs::FileSystem::new(&objects).map_err(|e| {
        UpError(format!(
            "cannot serve objects from {}: {e:?}",
            objects.display()
        ))
    })?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
    ));
    let service = builder.build();
    tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let connection = http
                .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
    });
    Ok(credentials)
}
