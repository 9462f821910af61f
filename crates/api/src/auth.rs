//! Bearer tokens scoped to workspaces and roles.
//!
//! Tokens are random strings shown once; the server keeps only their
//! SHA-256 hashes, in a TOML file:
//!
//! ```toml
//! [[token]]
//! name = "inbox-frontend"          # shows up as the actor of its commands
//! sha256 = "9f86d0…"               # hex SHA-256 of the token
//! role = "write"                   # read, write or admin
//! workspaces = ["0192…", "0193…"]  # or ["*"] for every workspace
//! ```
//!
//! Roles nest: `admin` may do what `write` may, `write` what `read` may.
//! A token never reaches a workspace it does not list.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::Interceptor,
};
use uuid::Uuid;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Queries and feeds.
    Read,
    /// Commands on conversations and contacts too, and pulling a template
    /// catalogue from the Cloud API.
    Write,
    /// Channel settings, numbers and template syncs too; with every
    /// workspace (`["*"]`), stored webhook payloads.
    Admin,
}

/// One configured token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    pub name: String,
    pub sha256: String,
    pub role: Role,
    pub workspaces: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    #[serde(default, rename = "token")]
    tokens: Vec<TokenEntry>,
}

/// Why the token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid token file: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The caller, once its token checked out. Put in each request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name: the actor of what it does.
    pub name: String,
    pub role: Role,
    /// `None`: every workspace.
    workspaces: Option<Vec<Uuid>>,
}

impl Principal {
    /// Refuses unless this caller may act with `role` in `workspace`.
    pub fn authorize(&self, workspace: Uuid, role: Role) -> Result<(), Status> {
        if self.role < role {
            return Err(Status::permission_denied(format!(
                "token {:?} has role {:?}; this call needs {role:?}",
                self.name, self.role
            )));
        }
        match &self.workspaces {
            Some(list) if !list.contains(&workspace) => Err(Status::permission_denied(format!(
                "token {:?} does not cover workspace {workspace}",
                self.name
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses unless this caller has at least `role` in every workspace
    /// (`workspaces = ["*"]`): for calls on things that belong to no
    /// workspace yet, such as stored webhook payloads.
    pub fn authorize_all(&self, role: Role) -> Result<(), Status> {
        if self.role < role {
            return Err(Status::permission_denied(format!(
                "token {:?} has role {:?}; this call needs {role:?}",
                self.name, self.role
            )));
        }
        match &self.workspaces {
            None => Ok(()),
            Some(_) => Err(Status::permission_denied(format!(
                "token {:?} does not cover every workspace; this call needs workspaces = [\"*\"]",
                self.name
            ))),
        }
    }
}

/// The configured tokens, by hash.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: Arc<HashMap<[u8; 32], Principal>>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Tokens from entries; fails on a malformed hash or workspace id.
    pub fn from_entries(entries: Vec<TokenEntry>) -> Result<Self, String> {
        let mut by_hash = HashMap::new();
        for entry in entries {
            let bytes =
                hex::decode(&entry.sha256).map_err(|e| format!("token {:?}: sha256: {e}", entry.name))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| format!("token {:?}: sha256 must be 64 hex digits", entry.name))?;
            let workspaces = if entry.workspaces.iter().any(|w| w == "*") {
                None
            } else {
                Some(
                    entry
                        .workspaces
                        .iter()
                        .map(|w| {
                            Uuid::parse_str(w)
                                .map_err(|e| format!("token {:?}: workspace {w:?}: {e}", entry.name))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                )
            };
            by_hash.insert(
                key,
                Principal {
                    name: entry.name,
                    role: entry.role,
                    workspaces,
                },
            );
        }
        Ok(Tokens {
            by_hash: Arc::new(by_hash),
        })
    }

    /// Loads the token file at `path`. With no file, or no token in it,
    /// creates an admin token for every workspace, writes the token itself
    /// to `first_token_path` (readable by its owner only) and its hash to
    /// `path`. Returns the tokens and, when it made one, where it wrote it.
    pub fn load_or_create(
        path: &Path,
        first_token_path: &Path,
    ) -> Result<(Self, Option<PathBuf>), TokenFileError> {
        let io = |source| TokenFileError::Io {
            path: path.to_owned(),
            source,
        };
        let file = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str::<TokenFile>(&text).map_err(|e| TokenFileError::Invalid {
                path: path.to_owned(),
                reason: e.to_string(),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => TokenFile::default(),
            Err(error) => return Err(io(error)),
        };
        if !file.tokens.is_empty() {
            let tokens = Tokens::from_entries(file.tokens).map_err(|reason| TokenFileError::Invalid {
                path: path.to_owned(),
                reason,
            })?;
            return Ok((tokens, None));
        }
        let token = new_token();
        let entry = TokenEntry {
            name: "admin".to_owned(),
            sha256: hex::encode(hash(&token)),
            role: Role::Admin,
            workspaces: vec!["*".to_owned()],
        };
        write_private(first_token_path, &format!("{token}\n")).map_err(|e| TokenFileError::Io {
            path: first_token_path.to_owned(),
            source: e,
        })?;
        let text = toml::to_string(&TokenFile {
            tokens: vec![entry.clone()],
        })
        .map_err(|e| TokenFileError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        write_private(path, &text).map_err(io)?;
        let tokens = Tokens::from_entries(vec![entry]).map_err(|reason| TokenFileError::Invalid {
            path: path.to_owned(),
            reason,
        })?;
        Ok((tokens, Some(first_token_path.to_owned())))
    }

    /// The caller a bearer token stands for.
    pub fn check(&self, token: &str) -> Option<&Principal> {
        // Looked up by the token's SHA-256, never by the token: how long the
        // lookup takes says nothing an attacker could use.
        self.by_hash.get(&hash(token))
    }

    /// A tonic interceptor: checks `authorization: Bearer …` and puts the
    /// [`Principal`] into the request's extensions.
    pub fn interceptor(
        &self,
    ) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static {
        let tokens = self.clone();
        move |mut request: Request<()>| {
            let header = request
                .metadata()
                .get("authorization")
                .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>`"))?;
            let token = header
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
            let principal = tokens
                .check(token.trim())
                .ok_or_else(|| Status::unauthenticated("unknown token"))?
                .clone();
            request.extensions_mut().insert(principal);
            Ok(request)
        }
    }
}

/// The client side: adds `authorization: Bearer <token>` to every call made
/// through a tonic client built `with_interceptor`.
#[derive(Clone)]
pub struct BearerToken(MetadataValue<Ascii>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.write_str("BearerToken(..)")
    }
}

impl BearerToken {
    /// Fails if the token is not printable ASCII (no real token is).
    pub fn new(token: &str) -> Result<Self, Status> {
        format!("Bearer {}", token.trim())
            .parse()
            .map(BearerToken)
            .map_err(|_| Status::invalid_argument("a token must be printable ASCII"))
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A new random token: `pvr_` and 32 random bytes in hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("pvr_{}", hex::encode(bytes))
}

/// The hex SHA-256 to put in the token file for `token`.
pub fn token_hash(token: &str) -> String {
    hex::encode(hash(token))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// The caller of a request that went through the interceptor.
pub fn principal<T>(request: &Request<T>) -> Result<&Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| Status::unauthenticated("no credentials checked for this call"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_workspaces_are_enforced() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let tokens = Tokens::from_entries(vec![TokenEntry {
            name: "svc".into(),
            sha256: token_hash("secret"),
            role: Role::Write,
            workspaces: vec![a.to_string()],
        }])
        .unwrap();
        assert!(tokens.check("wrong").is_none());
        let principal = tokens.check("secret").unwrap();
        assert!(principal.authorize(a, Role::Read).is_ok());
        assert!(principal.authorize(a, Role::Write).is_ok());
        assert_eq!(
            principal.authorize(a, Role::Admin).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            principal.authorize(b, Role::Read).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
    }

    #[test]
    fn all_workspace_calls_need_the_star_and_the_role() {
        let a = Uuid::from_u128(1);
        let tokens = Tokens::from_entries(vec![
            TokenEntry {
                name: "scoped-admin".into(),
                sha256: token_hash("scoped"),
                role: Role::Admin,
                workspaces: vec![a.to_string()],
            },
            TokenEntry {
                name: "global-writer".into(),
                sha256: token_hash("writer"),
                role: Role::Write,
                workspaces: vec!["*".into()],
            },
            TokenEntry {
                name: "global-admin".into(),
                sha256: token_hash("admin"),
                role: Role::Admin,
                workspaces: vec!["*".into()],
            },
        ])
        .unwrap();
        let denied = |token: &str| {
            tokens
                .check(token)
                .unwrap()
                .authorize_all(Role::Admin)
                .unwrap_err()
                .code()
        };
        assert_eq!(denied("scoped"), tonic::Code::PermissionDenied);
        assert_eq!(denied("writer"), tonic::Code::PermissionDenied);
        assert!(tokens.check("admin").unwrap().authorize_all(Role::Admin).is_ok());
    }

    #[test]
    fn first_start_writes_a_private_token_and_only_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let (tokens, made) =
            Tokens::load_or_create(&dir.path().join("tokens.toml"), &dir.path().join("admin-token")).unwrap();
        let token_path = made.unwrap();
        let token = std::fs::read_to_string(&token_path).unwrap();
        let principal = tokens.check(token.trim()).unwrap();
        assert_eq!(principal.role, Role::Admin);
        assert!(principal.authorize(Uuid::from_u128(9), Role::Admin).is_ok());
        let file = std::fs::read_to_string(dir.path().join("tokens.toml")).unwrap();
        assert!(
            !file.contains(token.trim()),
            "the token file must hold hashes only"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&token_path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        // The second start reads the file and makes nothing new.
        let (_, made) =
            Tokens::load_or_create(&dir.path().join("tokens.toml"), &dir.path().join("admin-token")).unwrap();
        assert!(made.is_none());
    }
}
