//! The S3 backend: each blob's bytes are one object keyed by its uid in a bucket of an
//! S3-compatible server (path-style URLs). Clients upload straight to S3 with a presigned POST
//! whose policy binds the bucket, the key, the content type, the size limit and an expiry, and
//! download through a short-lived presigned GET; confab never carries the bytes.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use confab_core::{Error, Result};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use s3::creds::Credentials;
use s3::post_policy::{PostPolicy, PostPolicyField, PostPolicyValue};
use s3::{Bucket, Region};

/// How long a download redirect stays valid.
pub const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(10 * 60);
/// The longest an upload policy may live (ConnectyCube's upload URLs last a day).
const MAX_UPLOAD_TTL_SECS: u64 = 24 * 60 * 60;

/// Everything but RFC 3986's unreserved characters is escaped, so a space is `%20` (never `+`)
/// and the SDK's `decodeURIComponent` gets every field back exactly.
const FIELD_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Clone)]
pub struct S3Config {
    /// `http(s)://host[:port]` of the S3 API.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

/// Written by hand so the secret key never reaches a log.
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

pub struct S3Blobs {
    bucket: Box<Bucket>,
}

fn s3_error(e: s3::error::S3Error) -> Error {
    Error::internal(e)
}

fn s3_status(what: &str, status: u16) -> Error {
    Error::internal(std::io::Error::other(format!(
        "S3 {what} answered {status}"
    )))
}

impl S3Blobs {
    pub fn open(config: &S3Config) -> Result<Self> {
        let region = Region::Custom {
            region: config.region.clone(),
            endpoint: config.endpoint.trim_end_matches('/').to_string(),
        };
        let credentials = Credentials::new(
            Some(&config.access_key),
            Some(&config.secret_key),
            None,
            None,
            None,
        )
        .map_err(Error::internal)?;
        let bucket = Bucket::new(&config.bucket, region, credentials)
            .map_err(s3_error)?
            .with_path_style();
        Ok(Self { bucket })
    }

    /// Streams a local file to `key` (an upload this server received itself).
    pub async fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        content_type: &str,
    ) -> Result<()> {
        let mut file = tokio::fs::File::open(path).await.map_err(Error::internal)?;
        let sent = self
            .bucket
            .put_object_stream_with_content_type(&mut file, key, content_type)
            .await
            .map_err(s3_error)?;
        match sent.status_code() {
            200..=299 => Ok(()),
            status => Err(s3_status("upload", status)),
        }
    }

    /// The upload URL for `key`: the bucket's URL with the presigned POST's form fields as its
    /// query. The policy allows exactly this key and content type, at most `max_bytes`, until
    /// `expires_in` from now (whole seconds, at most a day); no `acl` field, so the object stays
    /// private.
    pub async fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        max_bytes: u64,
        expires_in: Duration,
    ) -> Result<String> {
        let secs = expires_in.as_secs().clamp(1, MAX_UPLOAD_TTL_SECS) as u32;
        let max = u32::try_from(max_bytes).unwrap_or(u32::MAX);
        let policy = PostPolicy::new(secs)
            .condition(PostPolicyField::Key, PostPolicyValue::Exact(Cow::from(key)))
            .and_then(|p| {
                p.condition(
                    PostPolicyField::ContentType,
                    PostPolicyValue::Exact(Cow::from(content_type)),
                )
            })
            .and_then(|p| {
                p.condition(
                    PostPolicyField::ContentLengthRange,
                    PostPolicyValue::Range(0, max),
                )
            })
            .map_err(s3_error)?;
        let post = self.bucket.presign_post(policy).await.map_err(s3_error)?;
        // S3's documented spelling is `policy` (the library says `Policy`). Sorted for a stable
        // URL; S3 only needs `file` last, which the SDK sees to.
        let mut fields: Vec<_> = post
            .fields
            .into_iter()
            .map(|(k, v)| (if k == "Policy" { "policy".into() } else { k }, v))
            .collect();
        fields.sort();
        let query = fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, FIELD_VALUE),
                    utf8_percent_encode(v, FIELD_VALUE)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        Ok(format!("{}?{query}", post.url))
    }

    /// The stored object's size, or `None` when nothing was uploaded.
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        let (head, status) = self.bucket.head_object(key).await.map_err(s3_error)?;
        match status {
            200..=299 => Ok(Some(
                head.content_length
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
            )),
            404 => Ok(None),
            s => Err(s3_status("HEAD", s)),
        }
    }

    /// A presigned GET for the object, valid for [`DOWNLOAD_URL_TTL`].
    pub async fn download_url(&self, key: &str) -> Result<String> {
        self.bucket
            .presign_get(key, DOWNLOAD_URL_TTL.as_secs() as u32, None)
            .await
            .map_err(s3_error)
    }

    /// Removes the object; a missing one is fine (never uploaded).
    pub async fn remove(&self, key: &str) -> Result<()> {
        let resp = self.bucket.delete_object(key).await.map_err(s3_error)?;
        match resp.status_code() {
            200..=299 | 404 => Ok(()),
            s => Err(s3_status("DELETE", s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_values_are_percent_encoded_for_decode_uri_component() {
        let v = utf8_percent_encode("a b+c/=;~x", FIELD_VALUE).to_string();
        assert_eq!(v, "a%20b%2Bc%2F%3D%3B~x");
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = S3Config {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "b".into(),
            region: "us-east-1".into(),
            access_key: "AKID".into(),
            secret_key: "very-secret".into(),
        };
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
