//! The Microsoft Teams app package that carries the web client into Teams,
//! Outlook and the Microsoft 365 app as a personal tab: `manifest.json`
//! (schema 1.24) and its two icons, in a zip an admin uploads to Teams.

use entente_crds::config::{RuntimeConfig, TeamsAppConfig};
use serde_json::json;

use super::error::{ApiError, ApiResult};

/// The manifest schema version the package is written for.
pub const MANIFEST_VERSION: &str = "1.24";
/// The colour of the icons and of the app's tile.
const ACCENT: [u8; 3] = [0x1d, 0x4e, 0xd8];

/// The package for this workspace, or why there is none.
pub fn package(config: &RuntimeConfig) -> ApiResult<Vec<u8>> {
    let teams = config.web.teams.as_ref().ok_or_else(|| {
        ApiError::conflict(
            "web",
            "this workspace is not embedded in Microsoft 365: set spec.web.microsoft365 (appId, and entraApplicationId for single sign-on) in the Workspace",
        )
    })?;
    let manifest = manifest(config, teams)?;
    Ok(zip(&[
        (
            "manifest.json",
            serde_json::to_vec_pretty(&manifest).expect("JSON"),
        ),
        ("color.png", icon(192, false)),
        ("outline.png", icon(32, true)),
    ]))
}

fn manifest(config: &RuntimeConfig, teams: &TeamsAppConfig) -> ApiResult<serde_json::Value> {
    let site = config.workspace.site_url.trim_end_matches('/');
    let host = site
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or(""))
        .filter(|host| !host.is_empty())
        .ok_or_else(|| {
            ApiError::conflict(
                "siteUrl",
                "the workspace's siteUrl has no host for Teams to load the tab from",
            )
        })?;
    let name: String = config.workspace.display_name.chars().take(30).collect();
    let developer: String = config.workspace.organisation.chars().take(32).collect();
    let mut manifest = json!({
        "$schema": format!("https://developer.microsoft.com/en-us/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"),
        "manifestVersion": MANIFEST_VERSION,
        "version": "1.0.0",
        "id": teams.app_id,
        "developer": {
            "name": developer,
            "websiteUrl": site,
            "privacyUrl": site,
            "termsOfUseUrl": site,
        },
        "name": {"short": name, "full": config.workspace.display_name.chars().take(100).collect::<String>()},
        "description": {
            "short": "Chat, files and calls of your organisation's Entente workspace",
            "full": format!(
                "{}'s Entente workspace, run by {}: channels, direct messages, files and calls, shared with partner organisations, on infrastructure they control.",
                config.workspace.display_name, config.workspace.organisation
            ),
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": format!("#{:02x}{:02x}{:02x}", ACCENT[0], ACCENT[1], ACCENT[2]),
        "staticTabs": [{
            "entityId": "entente",
            "name": name,
            "contentUrl": format!("{site}/?embedded=teams"),
            "websiteUrl": site,
            "scopes": ["personal"],
        }],
        "permissions": ["identity"],
        "validDomains": [host],
    });
    if let Some(client) = &teams.entra_application_id {
        manifest["webApplicationInfo"] = json!({
            "id": client,
            "resource": format!("api://{host}/{client}"),
        });
    }
    Ok(manifest)
}

/// A square PNG: the colour icon a white square on the accent colour, the
/// outline icon a white square on transparent, as Teams asks.
fn icon(size: u32, outline: bool) -> Vec<u8> {
    let mut raw = Vec::with_capacity((size * (size * 4 + 1)) as usize);
    for y in 0..size {
        raw.push(0); // no filter
        for x in 0..size {
            let inset = size / 4;
            let inside = x >= inset && x < size - inset && y >= inset && y < size - inset;
            let pixel = match (outline, inside) {
                (true, true) => [255, 255, 255, 255],
                (true, false) => [0, 0, 0, 0],
                (false, true) => [255, 255, 255, 255],
                (false, false) => [ACCENT[0], ACCENT[1], ACCENT[2], 255],
            };
            raw.extend_from_slice(&pixel);
        }
    }
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA
    let mut compressed = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut compressed, &raw).expect("in memory");
    let idat = compressed.finish().expect("in memory");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", &ihdr), (b"IDAT", &idat), (b"IEND", &Vec::new())] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&crc.sum().to_be_bytes());
    }
    png
}

/// A zip of `files`, stored uncompressed (they are small, and PNGs are
/// compressed already).
fn zip(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let offset = out.len() as u32;
        let header = |signature: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&signature.to_le_bytes());
            if central {
                h.extend_from_slice(&20u16.to_le_bytes()); // made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // needed to extract
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u16.to_le_bytes()); // time
            h.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
            h.extend_from_slice(&crc.sum().to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central {
                h.extend_from_slice(&0u16.to_le_bytes()); // comment
                h.extend_from_slice(&0u16.to_le_bytes()); // disk
                h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
                h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend_from_slice(data);
        central.extend(header(0x0201_4b50, true));
    }
    let start = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment
    out
}
