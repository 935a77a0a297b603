//! The store against real databases: SQLite always, MySQL/MariaDB and
//! PostgreSQL when `SESAME_TEST_MYSQL_URL` / `SESAME_TEST_POSTGRES_URL` are set
//! (and the features compiled in).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/db.rs"]
mod db;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sesame::store::*;

const NOW: i64 = 1_700_000_000;
const A: &str = "tenant-a";
const B: &str = "tenant-b";

/// Every test database, connected and migrated.
fn stores() -> Vec<(db::TestDb, Store)> {
    db::test_databases()
        .into_iter()
        .map(|tdb| {
            let store = Store::connect(&tdb.url, 8, Duration::from_secs(30), &tdb.base_dir())
                .unwrap_or_else(|e| panic!("{tdb:?}: {e}"));
            let applied = store.migrate().unwrap_or_else(|e| panic!("{tdb:?}: {e}"));
            assert!(
                !applied.is_empty(),
                "{tdb:?}: nothing applied on a fresh database"
            );
            (tdb, store)
        })
        .collect()
}

fn h(s: &str) -> TokenHash {
    TokenHash::of(s)
}

fn code(tenant: &str, secret: &str, grant: &str) -> CodeRow {
    CodeRow {
        tenant_id: tenant.into(),
        code_hash: h(secret),
        grant_id: grant.into(),
        client_id: "client-1".into(),
        user_sub: "alice".into(),
        redirect_uri: "https://rp.example/cb".into(),
        scope: "openid profile".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: None,
        code_challenge_method: None,
        auth_time: NOW - 10,
        refresh_token: true,
        created_at: NOW,
        expires_at: NOW + 60,
        consumed_at: None,
        redirect_uri_sent: true,
        generation: String::new(),
        resource: Some("https://api.example https://files.example".into()),
        dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
        sid: None,
    }
}

fn refresh(tenant: &str, secret: &str, grant: &str, parent: Option<&str>) -> RefreshTokenRow {
    RefreshTokenRow {
        tenant_id: tenant.into(),
        token_hash: h(secret),
        grant_id: grant.into(),
        parent_hash: parent.map(h),
        client_id: "client-1".into(),
        user_sub: "alice".into(),
        scope: "openid offline_access".into(),
        auth_time: NOW - 10,
        created_at: NOW,
        expires_at: NOW + 3600,
        family_expires_at: NOW + 86400,
        used_at: None,
        revoked_at: None,
        generation: "g1".into(),
        jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
        resource: Some("https://api.example".into()),
        sid: None,
    }
}

fn refresh_only(row: RefreshTokenRow) -> Issued {
    Issued {
        access_token: None,
        refresh_token: Some(row),
    }
}

fn access_only(row: AccessTokenRow) -> Issued {
    Issued {
        access_token: Some(row),
        refresh_token: None,
    }
}

fn access(tenant: &str, secret: &str, grant: &str) -> AccessTokenRow {
    AccessTokenRow {
        tenant_id: tenant.into(),
        token_hash: h(secret),
        grant_id: grant.into(),
        client_id: "client-1".into(),
        user_sub: Some("alice".into()),
        scope: "openid".into(),
        jwt: false,
        created_at: NOW,
        expires_at: NOW + 300,
        revoked_at: None,
        generation: "g1".into(),
        jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
        audience: Some("https://api.example".into()),
    }
}

fn key(tenant: &str, alg: &str, kid: &str) -> StoredKey {
    StoredKey {
        tenant_id: tenant.into(),
        alg: alg.into(),
        kid: kid.into(),
        private_pem: format!("-----BEGIN PRIVATE KEY-----\n{kid}\n-----END PRIVATE KEY-----\n"),
        created_at: NOW,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrate_is_idempotent_and_ping_works() {
    let stores = stores();
    let seen: Vec<&str> = stores.iter().map(|(tdb, _)| tdb.backend).collect();
    eprintln!("backends under test: {seen:?}");
    #[cfg(feature = "mysql")]
    assert_eq!(
        std::env::var("SESAME_TEST_MYSQL_URL").is_ok(),
        seen.contains(&"mysql")
    );
    #[cfg(feature = "postgres")]
    assert_eq!(
        std::env::var("SESAME_TEST_POSTGRES_URL").is_ok(),
        seen.contains(&"postgres")
    );
    for (tdb, store) in stores {
        assert_eq!(store.migrate().unwrap(), Vec::<String>::new(), "{tdb:?}");
        store.ping().await.unwrap();
        let expected = match tdb.backend {
            "sqlite" => Backend::Sqlite,
            "mysql" => Backend::Mysql,
            _ => Backend::Postgres,
        };
        assert_eq!(store.backend(), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_keys_first_one_wins() {
    for (tdb, store) in stores() {
        let first = store
            .find_or_insert_signing_key(key(A, "RS256", "k1"))
            .await
            .unwrap();
        assert_eq!(first, key(A, "RS256", "k1"), "{tdb:?}");
        let again = store
            .find_or_insert_signing_key(key(A, "RS256", "k2"))
            .await
            .unwrap();
        assert_eq!(again, first, "{tdb:?}");
        // Another alg, another tenant: their own keys.
        let es = store
            .find_or_insert_signing_key(key(A, "ES256", "k3"))
            .await
            .unwrap();
        assert_eq!(es.kid, "k3");
        let b = store
            .find_or_insert_signing_key(key(B, "RS256", "k4"))
            .await
            .unwrap();
        assert_eq!(b.kid, "k4");

        // Racing inserts ("nodes") all end up with the one stored key.
        let mut set = tokio::task::JoinSet::new();
        for i in 0..20 {
            let store = store.clone();
            set.spawn(async move {
                store
                    .find_or_insert_signing_key(key("race", "EdDSA", &format!("r{i}")))
                    .await
            });
        }
        let mut kids = HashSet::new();
        while let Some(r) = set.join_next().await {
            kids.insert(r.unwrap().unwrap().kid);
        }
        assert_eq!(kids.len(), 1, "{tdb:?}: {kids:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auth_requests() {
    for (tdb, store) in stores() {
        let row = AuthRequestRow {
            tenant_id: A.into(),
            request_hash: h("req-1"),
            client_id: "client-1".into(),
            params: r#"{"scope":"openid","state":"xyz"}"#.into(),
            created_at: NOW,
            expires_at: NOW + 600,
        };
        store.insert_auth_request(row.clone()).await.unwrap();
        assert_eq!(
            store.find_auth_request(A, h("req-1"), NOW).await.unwrap(),
            Some(row.clone()),
            "{tdb:?}"
        );
        assert_eq!(
            store
                .find_auth_request(A, h("req-1"), NOW + 600)
                .await
                .unwrap(),
            None,
            "expired"
        );
        assert_eq!(
            store.find_auth_request(B, h("req-1"), NOW).await.unwrap(),
            None,
            "other tenant"
        );
        assert_eq!(
            store.find_auth_request(A, h("req-2"), NOW).await.unwrap(),
            None
        );
        assert!(!store.delete_auth_request(B, h("req-1")).await.unwrap());
        assert!(store.delete_auth_request(A, h("req-1")).await.unwrap());
        assert!(!store.delete_auth_request(A, h("req-1")).await.unwrap());
        assert_eq!(
            store.find_auth_request(A, h("req-1"), NOW).await.unwrap(),
            None
        );
        // A duplicate insert is an error, not silently ignored.
        store.insert_auth_request(row.clone()).await.unwrap();
        assert!(matches!(
            store.insert_auth_request(row).await,
            Err(StoreError::Query(_))
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn pushed_requests_are_taken_once_by_their_client_in_time() {
    for (tdb, store) in stores() {
        let row = PushedRequestRow {
            tenant_id: A.into(),
            request_hash: h("urn-1"),
            client_id: "client-1".into(),
            params: r#"{"scope":"openid"}"#.into(),
            created_at: NOW,
            expires_at: NOW + 60,
        };
        store.insert_pushed_request(row.clone()).await.unwrap();
        let take = |tenant: &'static str, client: &'static str, now: i64| {
            let store = store.clone();
            async move {
                store
                    .consume_pushed_request(tenant, h("urn-1"), client, now)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            take(B, "client-1", NOW).await,
            None,
            "{tdb:?}: other tenant"
        );
        assert_eq!(
            take(A, "client-2", NOW).await,
            None,
            "{tdb:?}: other client"
        );
        assert_eq!(
            take(A, "client-1", NOW + 60).await,
            None,
            "{tdb:?}: expired"
        );
        assert_eq!(take(A, "client-1", NOW).await, Some(row.clone()), "{tdb:?}");
        assert_eq!(take(A, "client-1", NOW).await, None, "{tdb:?}: used");

        // Of racing takers, one wins.
        let row = PushedRequestRow {
            request_hash: h("urn-hot"),
            ..row
        };
        store.insert_pushed_request(row).await.unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(20));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (store, barrier) = (store.clone(), barrier.clone());
            set.spawn(async move {
                barrier.wait().await;
                store
                    .consume_pushed_request(A, h("urn-hot"), "client-1", NOW)
                    .await
            });
        }
        let mut won = 0;
        while let Some(r) = set.join_next().await {
            if r.unwrap()
                .unwrap_or_else(|e| panic!("{tdb:?}: {e}"))
                .is_some()
            {
                won += 1;
            }
        }
        assert_eq!(won, 1, "{tdb:?}");

        // Expired ones are purged, live ones kept.
        for (secret, expires_at) in [("urn-old", NOW - 1), ("urn-live", NOW + 1)] {
            let row = PushedRequestRow {
                tenant_id: B.into(),
                request_hash: h(secret),
                client_id: "client-1".into(),
                params: "{}".into(),
                created_at: NOW - 60,
                expires_at,
            };
            store.insert_pushed_request(row).await.unwrap();
        }
        assert_eq!(store.purge_expired(NOW, 10).await.unwrap(), 1, "{tdb:?}");
        let live = store
            .consume_pushed_request(B, h("urn-live"), "client-1", NOW)
            .await
            .unwrap();
        assert!(live.is_some(), "{tdb:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions() {
    for (tdb, store) in stores() {
        let row = SessionRow {
            tenant_id: A.into(),
            session_hash: h("sid-1"),
            sid: "public-sid-1".into(),
            user_sub: "alice".into(),
            auth_time: NOW - 5,
            created_at: NOW,
            expires_at: NOW + 3600,
            revoked_at: None,
        };
        store.insert_session(row.clone()).await.unwrap();
        assert_eq!(
            store.find_session(A, h("sid-1"), NOW).await.unwrap(),
            Some(row.clone()),
            "{tdb:?}"
        );
        assert_eq!(
            store.find_session(A, h("sid-1"), NOW + 3600).await.unwrap(),
            None,
            "expired"
        );
        assert_eq!(
            store.find_session(B, h("sid-1"), NOW).await.unwrap(),
            None,
            "other tenant"
        );
        assert!(!store.revoke_session(B, h("sid-1"), NOW).await.unwrap());
        assert!(store.revoke_session(A, h("sid-1"), NOW + 1).await.unwrap());
        assert!(!store.revoke_session(A, h("sid-1"), NOW + 2).await.unwrap());
        assert_eq!(
            store.find_session(A, h("sid-1"), NOW).await.unwrap(),
            None,
            "revoked"
        );
    }
}

fn session(tenant: &str, cookie: &str, sid: &str, sub: &str) -> SessionRow {
    SessionRow {
        tenant_id: tenant.into(),
        session_hash: h(cookie),
        sid: sid.into(),
        user_sub: sub.into(),
        auth_time: NOW - 5,
        created_at: NOW,
        expires_at: NOW + 3600,
        revoked_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ended_session_queues_one_logout_per_notified_client_and_a_lease_has_one_holder() {
    for (tdb, store) in stores() {
        store
            .insert_session(session(A, "cookie-1", "sid-1", "alice"))
            .await
            .unwrap();
        for (i, client) in ["app-1", "app-2", "app-3", "app-1"].iter().enumerate() {
            store
                .insert_code(CodeRow {
                    client_id: client.to_string(),
                    sid: Some("sid-1".into()),
                    ..code(A, &format!("code-{i}"), "g")
                })
                .await
                .unwrap_or_else(|e| panic!("{tdb:?}: {e}"));
        }
        assert_eq!(
            store.session_clients(A, "sid-1").await.unwrap(),
            ["app-1", "app-2", "app-3"],
            "{tdb:?}: each client once"
        );
        // Every code was stored, the one for a client already recorded too
        // (its transaction survived the known pair).
        for i in 0..4 {
            assert!(
                store
                    .find_code(A, h(&format!("code-{i}")))
                    .await
                    .unwrap()
                    .is_some(),
                "{tdb:?}: code-{i}"
            );
        }
        assert!(store.session_clients(B, "sid-1").await.unwrap().is_empty());
        // app-3 has no back-channel URI: not notified.
        let notify = vec!["app-1".to_string(), "app-2".to_string()];
        let ended = store
            .end_session(A, h("cookie-1"), NOW, notify.clone())
            .await
            .unwrap()
            .expect("ended");
        assert_eq!((ended.sid.as_str(), ended.clients.len()), ("sid-1", 3));
        assert_eq!(
            store
                .end_session(A, h("cookie-1"), NOW, notify)
                .await
                .unwrap(),
            None,
            "{tdb:?}: ended once"
        );
        assert_eq!(store.pending_logouts().await.unwrap(), 2, "{tdb:?}");
        // Two nodes claiming at once: each message is held by one of them.
        let (x, y) = tokio::join!(
            store.claim_logouts(NOW, NOW + 30, 10),
            store.claim_logouts(NOW, NOW + 30, 10)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.len() + y.len(), 2, "{tdb:?}: {x:?} {y:?}");
        let mut held: Vec<LogoutMessage> = x.into_iter().chain(y).collect();
        held.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        assert_eq!(held[0].client_id, "app-1");
        assert_eq!((held[0].sid.as_str(), held[0].attempts), ("sid-1", 1));
        assert!(
            store
                .claim_logouts(NOW + 29, NOW + 60, 10)
                .await
                .unwrap()
                .is_empty(),
            "{tdb:?}: leased"
        );
        assert!(store
            .finish_logout(&held[0], NOW + 1, Attempt::Delivered)
            .await
            .unwrap());
        let retry = Attempt::Retry {
            retry_at: NOW + 100,
            error: "answered 503".into(),
        };
        assert!(store.finish_logout(&held[1], NOW + 1, retry).await.unwrap());
        assert!(store
            .claim_logouts(NOW + 99, NOW + 130, 10)
            .await
            .unwrap()
            .is_empty());
        // The lease ran out while its holder was still at it: another takes
        // the row, and the late holder's outcome changes nothing.
        let again = store.claim_logouts(NOW + 100, NOW + 130, 10).await.unwrap();
        assert_eq!((again.len(), again[0].attempts), (1, 2), "{tdb:?}");
        let taken = store.claim_logouts(NOW + 131, NOW + 160, 10).await.unwrap();
        assert_eq!(taken.len(), 1, "{tdb:?}: lease expired");
        assert!(!store
            .finish_logout(&again[0], NOW + 140, Attempt::Delivered)
            .await
            .unwrap());
        let abandon = Attempt::Abandon {
            error: "answered 404".into(),
        };
        assert!(store
            .finish_logout(&taken[0], NOW + 140, abandon)
            .await
            .unwrap());
        assert_eq!(store.pending_logouts().await.unwrap(), 0, "{tdb:?}");
        // Purged: the delivered one at once (nothing else is due yet), the
        // abandoned one after a week.
        assert_eq!(
            store.purge_expired(NOW + 200, 100).await.unwrap(),
            1,
            "{tdb:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_are_found_by_their_public_sid() {
    for (tdb, store) in stores() {
        let row = session(A, "cookie-1", "sid-1", "alice");
        store.insert_session(row.clone()).await.unwrap();
        store
            .insert_session(session(A, "cookie-2", "sid-2", "alice"))
            .await
            .unwrap();
        assert_eq!(
            store.find_session_by_sid(A, "sid-1", NOW).await.unwrap(),
            Some(row.clone()),
            "{tdb:?}"
        );
        assert_eq!(
            store.find_session(A, h("cookie-1"), NOW).await.unwrap(),
            Some(row),
            "{tdb:?}: the cookie still finds it"
        );
        assert_eq!(
            store.find_session_by_sid(A, "cookie-1", NOW).await.unwrap(),
            None,
            "the cookie is not the sid"
        );
        assert_eq!(
            store.find_session_by_sid(B, "sid-1", NOW).await.unwrap(),
            None,
            "other tenant"
        );
        assert_eq!(
            store
                .find_session_by_sid(A, "sid-1", NOW + 3600)
                .await
                .unwrap(),
            None,
            "expired"
        );
        assert!(store
            .revoke_session(A, h("cookie-1"), NOW + 1)
            .await
            .unwrap());
        assert_eq!(
            store.find_session_by_sid(A, "sid-1", NOW).await.unwrap(),
            None,
            "revoked"
        );
        assert!(store
            .find_session_by_sid(A, "sid-2", NOW)
            .await
            .unwrap()
            .is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoking_a_users_sessions_spares_everyone_else() {
    for (tdb, store) in stores() {
        for (tenant, cookie, sub) in [
            (A, "alice-1", "alice"),
            (A, "alice-2", "alice"),
            (A, "alice-revoked", "alice"),
            (A, "bob-1", "bob"),
            (B, "alice-b", "alice"),
        ] {
            store
                .insert_session(session(tenant, cookie, &format!("sid-{cookie}"), sub))
                .await
                .unwrap();
        }
        store
            .insert_session(SessionRow {
                expires_at: NOW - 1,
                ..session(A, "alice-expired", "sid-alice-expired", "alice")
            })
            .await
            .unwrap();
        assert!(store
            .revoke_session(A, h("alice-revoked"), NOW)
            .await
            .unwrap());

        assert_eq!(
            store
                .revoke_sessions_of_user(A, "alice", NOW)
                .await
                .unwrap(),
            2,
            "{tdb:?}: the live ones"
        );
        assert_eq!(
            store
                .revoke_sessions_of_user(A, "alice", NOW + 1)
                .await
                .unwrap(),
            0,
            "{tdb:?}: none left"
        );
        for cookie in ["alice-1", "alice-2"] {
            assert_eq!(
                store.find_session(A, h(cookie), NOW).await.unwrap(),
                None,
                "{tdb:?}: {cookie}"
            );
        }
        for (tenant, cookie) in [(A, "bob-1"), (B, "alice-b")] {
            assert!(
                store
                    .find_session(tenant, h(cookie), NOW)
                    .await
                    .unwrap()
                    .is_some(),
                "{tdb:?}: {cookie}"
            );
        }
        assert_eq!(
            store
                .revoke_sessions_of_user(B, "carol", NOW)
                .await
                .unwrap(),
            0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consents() {
    for (tdb, store) in stores() {
        assert_eq!(
            store.find_consent(A, "client-1", "alice").await.unwrap(),
            None
        );
        store
            .save_consent(A, "client-1", "alice", "openid", NOW)
            .await
            .unwrap();
        assert_eq!(
            store
                .find_consent(A, "client-1", "alice")
                .await
                .unwrap()
                .as_deref(),
            Some("openid"),
            "{tdb:?}"
        );
        store
            .save_consent(A, "client-1", "alice", "openid email", NOW + 1)
            .await
            .unwrap();
        // Saving the same value again is fine too.
        store
            .save_consent(A, "client-1", "alice", "openid email", NOW + 1)
            .await
            .unwrap();
        assert_eq!(
            store
                .find_consent(A, "client-1", "alice")
                .await
                .unwrap()
                .as_deref(),
            Some("openid email")
        );
        assert_eq!(
            store.find_consent(B, "client-1", "alice").await.unwrap(),
            None,
            "other tenant"
        );
        assert_eq!(
            store.find_consent(A, "client-2", "alice").await.unwrap(),
            None
        );
        assert_eq!(
            store.find_consent(A, "client-1", "bob").await.unwrap(),
            None
        );

        // Concurrent first saves of one key do not fail.
        let mut set = tokio::task::JoinSet::new();
        for i in 0..20 {
            let store = store.clone();
            set.spawn(async move {
                store
                    .save_consent(A, "client-3", "carol", &format!("s{i}"), NOW)
                    .await
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
        let scope = store
            .find_consent(A, "client-3", "carol")
            .await
            .unwrap()
            .unwrap();
        assert!(scope.starts_with('s'), "{tdb:?}: {scope}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn codes_are_single_use() {
    for (tdb, store) in stores() {
        let mut row = code(A, "code-1", "grant-1");
        row.code_challenge = Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into());
        row.code_challenge_method = Some("S256".into());
        store.insert_code(row.clone()).await.unwrap();
        let mut no_nonce = code(A, "code-2", "grant-2");
        no_nonce.nonce = None;
        no_nonce.refresh_token = false;
        store.insert_code(no_nonce.clone()).await.unwrap();

        assert_eq!(
            store
                .consume_code(B, h("code-1"), NOW, Issued::default())
                .await
                .unwrap(),
            CodeConsumption::NotFound,
            "{tdb:?}"
        );
        let consumed = CodeRow {
            consumed_at: Some(NOW + 1),
            ..row.clone()
        };
        assert_eq!(
            store.find_code(A, h("code-1")).await.unwrap(),
            Some(row.clone())
        );
        assert_eq!(store.find_code(B, h("code-1")).await.unwrap(), None);
        // The winner's tokens are written with the consumption; a loser's are not.
        let issued = |secret: &str| Issued {
            access_token: Some(access(A, &format!("a-{secret}"), "grant-1")),
            refresh_token: Some(refresh(A, &format!("r-{secret}"), "grant-1", None)),
        };
        assert_eq!(
            store
                .consume_code(A, h("code-1"), NOW + 1, issued("won"))
                .await
                .unwrap(),
            CodeConsumption::Consumed
        );
        assert_eq!(
            store
                .consume_code(A, h("code-1"), NOW + 2, issued("lost"))
                .await
                .unwrap(),
            CodeConsumption::AlreadyUsed(Box::new(consumed.clone()))
        );
        assert_eq!(
            store.find_code(A, h("code-1")).await.unwrap(),
            Some(consumed)
        );
        let won = issued("won");
        assert_eq!(
            store.find_access_token(A, h("a-won")).await.unwrap(),
            won.access_token,
            "{tdb:?}"
        );
        assert_eq!(
            store.find_refresh_token(A, h("r-won")).await.unwrap(),
            won.refresh_token,
            "{tdb:?}"
        );
        assert_eq!(store.find_access_token(A, h("a-lost")).await.unwrap(), None);
        assert_eq!(
            store.find_refresh_token(A, h("r-lost")).await.unwrap(),
            None
        );
        // Tokens of another tenant are refused before anything is spent.
        assert!(store
            .consume_code(
                A,
                h("code-2"),
                NOW,
                Issued {
                    access_token: Some(access(B, "a-b", "grant-2")),
                    refresh_token: None,
                }
            )
            .await
            .is_err());
        assert_eq!(
            store
                .consume_code(A, h("nope"), NOW, Issued::default())
                .await
                .unwrap(),
            CodeConsumption::NotFound
        );
        assert_eq!(
            store
                .consume_code(A, h("code-2"), NOW, Issued::default())
                .await
                .unwrap(),
            CodeConsumption::Consumed
        );
        assert_eq!(
            store.find_code(A, h("code-2")).await.unwrap(),
            Some(CodeRow {
                consumed_at: Some(NOW),
                ..no_nonce
            })
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_consume_code_has_one_winner() {
    for (tdb, store) in stores() {
        store
            .insert_code(code(A, "hot-code", "grant-hot"))
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(50));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (store, barrier) = (store.clone(), barrier.clone());
            set.spawn(async move {
                barrier.wait().await;
                store
                    .consume_code(A, h("hot-code"), NOW, Issued::default())
                    .await
            });
        }
        let (mut consumed, mut replays) = (0, 0);
        while let Some(r) = set.join_next().await {
            match r.unwrap().unwrap_or_else(|e| panic!("{tdb:?}: {e}")) {
                CodeConsumption::Consumed => consumed += 1,
                CodeConsumption::AlreadyUsed(_) => replays += 1,
                CodeConsumption::NotFound => panic!("{tdb:?}: not found"),
            }
        }
        assert_eq!((consumed, replays), (1, 49), "{tdb:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_tokens_rotate_once() {
    for (tdb, store) in stores() {
        let first = refresh(A, "rt-1", "g1", None);
        store
            .insert_issued(refresh_only(first.clone()))
            .await
            .unwrap();
        assert_eq!(
            store.find_refresh_token(A, h("rt-1")).await.unwrap(),
            Some(first.clone()),
            "{tdb:?}"
        );
        assert_eq!(
            store.find_refresh_token(B, h("rt-1")).await.unwrap(),
            None,
            "other tenant"
        );
        assert_eq!(
            store
                .rotate_refresh_token(B, h("rt-1"), Issued::default(), NOW)
                .await
                .unwrap(),
            Rotation::NotFound
        );

        let second = refresh(A, "rt-2", "g1", Some("rt-1"));
        assert_eq!(
            store
                .rotate_refresh_token(A, h("rt-1"), refresh_only(second.clone()), NOW + 5)
                .await
                .unwrap(),
            Rotation::Rotated
        );
        assert_eq!(
            store
                .find_refresh_token(A, h("rt-1"))
                .await
                .unwrap()
                .unwrap()
                .used_at,
            Some(NOW + 5)
        );
        assert_eq!(
            store.find_refresh_token(A, h("rt-2")).await.unwrap(),
            Some(second)
        );

        // A replay of the used token: no new token is stored.
        let third = refresh(A, "rt-3", "g1", Some("rt-1"));
        assert_eq!(
            store
                .rotate_refresh_token(A, h("rt-1"), refresh_only(third), NOW + 6)
                .await
                .unwrap(),
            Rotation::AlreadyUsed
        );
        assert_eq!(store.find_refresh_token(A, h("rt-3")).await.unwrap(), None);
        assert_eq!(
            store
                .rotate_refresh_token(A, h("unknown"), Issued::default(), NOW)
                .await
                .unwrap(),
            Rotation::NotFound
        );

        // Without a successor (e.g. a last use); then a revoked token.
        assert_eq!(
            store
                .rotate_refresh_token(A, h("rt-2"), Issued::default(), NOW + 7)
                .await
                .unwrap(),
            Rotation::Rotated
        );
        store
            .insert_issued(refresh_only(refresh(A, "rt-x", "g2", None)))
            .await
            .unwrap();
        store.revoke_grant(A, "g2", NOW).await.unwrap();
        assert_eq!(
            store
                .rotate_refresh_token(A, h("rt-x"), Issued::default(), NOW + 1)
                .await
                .unwrap(),
            Rotation::AlreadyUsed
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_rotation_has_one_winner() {
    for (tdb, store) in stores() {
        store
            .insert_issued(refresh_only(refresh(A, "hot-rt", "g-hot", None)))
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(50));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..50 {
            let (store, barrier) = (store.clone(), barrier.clone());
            set.spawn(async move {
                barrier.wait().await;
                let next = refresh(A, &format!("hot-next-{i}"), "g-hot", Some("hot-rt"));
                store
                    .rotate_refresh_token(A, h("hot-rt"), refresh_only(next), NOW + 1)
                    .await
            });
        }
        let (mut rotated, mut lost) = (0, 0);
        while let Some(r) = set.join_next().await {
            match r.unwrap().unwrap_or_else(|e| panic!("{tdb:?}: {e}")) {
                Rotation::Rotated => rotated += 1,
                Rotation::AlreadyUsed => lost += 1,
                Rotation::NotFound => panic!("{tdb:?}: not found"),
            }
        }
        assert_eq!((rotated, lost), (1, 49), "{tdb:?}");
        let mut successors = 0;
        for i in 0..50 {
            if store
                .find_refresh_token(A, h(&format!("hot-next-{i}")))
                .await
                .unwrap()
                .is_some()
            {
                successors += 1;
            }
        }
        assert_eq!(
            successors, 1,
            "{tdb:?}: exactly the winner's successor is stored"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_tokens() {
    for (tdb, store) in stores() {
        let opaque = access(A, "at-1", "g1");
        let jwt = AccessTokenRow {
            user_sub: None,
            jwt: true,
            ..access(A, "jti-1", "cc-1")
        };
        store
            .insert_issued(access_only(opaque.clone()))
            .await
            .unwrap();
        store.insert_issued(access_only(jwt.clone())).await.unwrap();
        assert_eq!(
            store.find_access_token(A, h("at-1")).await.unwrap(),
            Some(opaque),
            "{tdb:?}"
        );
        assert_eq!(
            store.find_access_token(A, h("jti-1")).await.unwrap(),
            Some(jwt)
        );
        assert_eq!(
            store.find_access_token(B, h("at-1")).await.unwrap(),
            None,
            "other tenant"
        );
        assert!(!store.revoke_access_token(B, h("at-1"), NOW).await.unwrap());
        assert!(store
            .revoke_access_token(A, h("at-1"), NOW + 3)
            .await
            .unwrap());
        assert!(!store
            .revoke_access_token(A, h("at-1"), NOW + 4)
            .await
            .unwrap());
        assert_eq!(
            store
                .find_access_token(A, h("at-1"))
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            Some(NOW + 3)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_grant_revokes_the_family() {
    for (tdb, store) in stores() {
        store.insert_code(code(A, "c-g1", "g1")).await.unwrap();
        store
            .insert_issued(refresh_only(refresh(A, "r1-g1", "g1", None)))
            .await
            .unwrap();
        store
            .insert_issued(refresh_only(refresh(A, "r2-g1", "g1", Some("r1-g1"))))
            .await
            .unwrap();
        store
            .insert_issued(access_only(access(A, "a1-g1", "g1")))
            .await
            .unwrap();
        store
            .insert_issued(access_only(access(A, "a2-g1", "g1")))
            .await
            .unwrap();
        // Another grant, and the same grant id in another tenant: untouched.
        store
            .insert_issued(refresh_only(refresh(A, "r-g2", "g2", None)))
            .await
            .unwrap();
        store
            .insert_issued(access_only(access(A, "a-g2", "g2")))
            .await
            .unwrap();
        store
            .insert_issued(refresh_only(refresh(B, "r-b-g1", "g1", None)))
            .await
            .unwrap();
        store
            .insert_issued(access_only(access(B, "a-b-g1", "g1")))
            .await
            .unwrap();
        store.insert_code(code(B, "c-b-g1", "g1")).await.unwrap();

        store.revoke_grant(A, "g1", NOW + 9).await.unwrap();
        for t in ["r1-g1", "r2-g1"] {
            assert_eq!(
                store
                    .find_refresh_token(A, h(t))
                    .await
                    .unwrap()
                    .unwrap()
                    .revoked_at,
                Some(NOW + 9),
                "{tdb:?} {t}"
            );
        }
        for t in ["a1-g1", "a2-g1"] {
            assert_eq!(
                store
                    .find_access_token(A, h(t))
                    .await
                    .unwrap()
                    .unwrap()
                    .revoked_at,
                Some(NOW + 9),
                "{tdb:?} {t}"
            );
        }
        match store
            .consume_code(A, h("c-g1"), NOW + 10, Issued::default())
            .await
            .unwrap()
        {
            CodeConsumption::AlreadyUsed(row) => assert_eq!(row.consumed_at, Some(NOW + 9)),
            other => panic!("{tdb:?}: {other:?}"),
        }
        assert_eq!(
            store
                .find_refresh_token(A, h("r-g2"))
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            None
        );
        assert_eq!(
            store
                .find_access_token(A, h("a-g2"))
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            None
        );
        assert_eq!(
            store
                .find_refresh_token(B, h("r-b-g1"))
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            None
        );
        assert_eq!(
            store
                .find_access_token(B, h("a-b-g1"))
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            None
        );
        assert!(matches!(
            store
                .consume_code(B, h("c-b-g1"), NOW, Issued::default())
                .await
                .unwrap(),
            CodeConsumption::Consumed
        ));
        // Revoking again (or an unknown grant) is harmless.
        store.revoke_grant(A, "g1", NOW + 20).await.unwrap();
        store.revoke_grant(A, "no-such-grant", NOW).await.unwrap();
        assert_eq!(
            store
                .find_refresh_token(A, h("r1-g1"))
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            Some(NOW + 9)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn purge_removes_only_expired_rows() {
    const DAY: i64 = 86_400;
    for (tdb, store) in stores() {
        // Expired (purged): 3 requests, 2 sessions, 1 code past the grace day,
        // 2 refresh tokens, 3 access tokens = 11 rows.
        for i in 0..3 {
            store
                .insert_auth_request(AuthRequestRow {
                    tenant_id: A.into(),
                    request_hash: h(&format!("old-req-{i}")),
                    client_id: "c".into(),
                    params: "{}".into(),
                    created_at: NOW - 700,
                    expires_at: NOW - 100,
                })
                .await
                .unwrap();
            store
                .insert_issued(access_only(AccessTokenRow {
                    expires_at: NOW - 1,
                    ..access(B, &format!("old-at-{i}"), "g")
                }))
                .await
                .unwrap();
        }
        for i in 0..2 {
            store
                .insert_session(SessionRow {
                    tenant_id: A.into(),
                    session_hash: h(&format!("old-sid-{i}")),
                    sid: format!("old-public-sid-{i}"),
                    user_sub: "alice".into(),
                    auth_time: NOW - 9000,
                    created_at: NOW - 9000,
                    expires_at: NOW - 10,
                    revoked_at: None,
                })
                .await
                .unwrap();
            store
                .insert_issued(refresh_only(RefreshTokenRow {
                    expires_at: NOW - 1,
                    ..refresh(A, &format!("old-rt-{i}"), "g", None)
                }))
                .await
                .unwrap();
        }
        store
            .insert_code(CodeRow {
                expires_at: NOW - DAY - 1,
                ..code(A, "old-code", "g")
            })
            .await
            .unwrap();

        // Kept: live rows, a code expired less than a day ago, a row expiring exactly now.
        store
            .insert_code(CodeRow {
                expires_at: NOW - 60,
                ..code(A, "recent-code", "g")
            })
            .await
            .unwrap();
        store.insert_code(code(A, "live-code", "g")).await.unwrap();
        store
            .insert_issued(refresh_only(refresh(A, "live-rt", "g", None)))
            .await
            .unwrap();
        store
            .insert_issued(access_only(AccessTokenRow {
                expires_at: NOW,
                ..access(A, "edge-at", "g")
            }))
            .await
            .unwrap();
        let live_session = SessionRow {
            tenant_id: A.into(),
            session_hash: h("live-sid"),
            sid: "live-public-sid".into(),
            user_sub: "alice".into(),
            auth_time: NOW,
            created_at: NOW,
            expires_at: NOW + 60,
            revoked_at: None,
        };
        store.insert_session(live_session.clone()).await.unwrap();
        store
            .find_or_insert_signing_key(key(A, "RS256", "k"))
            .await
            .unwrap();
        store
            .save_consent(A, "c", "alice", "openid", NOW - 10 * DAY)
            .await
            .unwrap();

        assert_eq!(store.purge_expired(NOW, 2).await.unwrap(), 11, "{tdb:?}");
        assert_eq!(store.purge_expired(NOW, 2).await.unwrap(), 0, "{tdb:?}");

        assert_eq!(
            store
                .consume_code(A, h("old-code"), NOW, Issued::default())
                .await
                .unwrap(),
            CodeConsumption::NotFound
        );
        assert_eq!(
            store.find_refresh_token(A, h("old-rt-0")).await.unwrap(),
            None
        );
        assert_eq!(
            store.find_access_token(B, h("old-at-2")).await.unwrap(),
            None
        );
        assert!(!store.delete_auth_request(A, h("old-req-1")).await.unwrap());
        assert!(!store.revoke_session(A, h("old-sid-1"), NOW).await.unwrap());

        assert!(matches!(
            store
                .consume_code(A, h("recent-code"), NOW, Issued::default())
                .await
                .unwrap(),
            CodeConsumption::Consumed
        ));
        assert!(matches!(
            store
                .consume_code(A, h("live-code"), NOW, Issued::default())
                .await
                .unwrap(),
            CodeConsumption::Consumed
        ));
        assert!(store
            .find_refresh_token(A, h("live-rt"))
            .await
            .unwrap()
            .is_some());
        assert!(store
            .find_access_token(A, h("edge-at"))
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            store.find_session(A, h("live-sid"), NOW).await.unwrap(),
            Some(live_session)
        );
        assert_eq!(
            store
                .find_or_insert_signing_key(key(A, "RS256", "other"))
                .await
                .unwrap()
                .kid,
            "k"
        );
        assert_eq!(
            store
                .find_consent(A, "c", "alice")
                .await
                .unwrap()
                .as_deref(),
            Some("openid")
        );

        // A large purge goes through in many batches.
        for i in 0..25 {
            store
                .insert_issued(access_only(AccessTokenRow {
                    expires_at: NOW - 1,
                    ..access(A, &format!("bulk-{i}"), "g")
                }))
                .await
                .unwrap();
        }
        assert_eq!(store.purge_expired(NOW, 4).await.unwrap(), 25, "{tdb:?}");
        // The recent code goes once its grace day has passed too.
        assert_eq!(
            store.purge_expired(NOW + DAY, 100).await.unwrap(),
            4,
            "{tdb:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_relative_path_and_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(
        "sqlite:nested/deeper/sesame.db",
        2,
        Duration::from_secs(5),
        dir.path(),
    )
    .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(
        dir.path().join("nested/deeper").is_dir(),
        "folder created at connect"
    );
    store.migrate().unwrap();
    store.ping().await.unwrap();
    assert!(dir.path().join("nested/deeper/sesame.db").is_file());
    let store2 = Store::connect(
        "sqlite://nested/deeper/sesame.db",
        2,
        Duration::from_secs(5),
        dir.path(),
    )
    .unwrap();
    assert!(store2.migrate().unwrap().is_empty(), "same file");
}

#[test]
fn bad_urls_are_config_errors() {
    let base = std::env::temp_dir();
    let err = Store::connect("redis://localhost/0", 1, Duration::from_secs(1), &base).unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    #[cfg(not(feature = "mysql"))]
    match Store::connect(
        "mysql://root@127.0.0.1:3306/x",
        1,
        Duration::from_secs(1),
        &base,
    ) {
        Err(StoreError::Config(m)) => {
            assert!(m.contains("built without the `mysql` feature"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    #[cfg(not(feature = "postgres"))]
    match Store::connect(
        "postgresql://u@127.0.0.1/x",
        1,
        Duration::from_secs(1),
        &base,
    ) {
        Err(StoreError::Config(m)) => {
            assert!(m.contains("built without the `postgres` feature"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

/// A server that is down: the store still builds, and calls fail as `Unavailable`.
#[cfg(any(feature = "mysql", feature = "postgres"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_is_unavailable() {
    let mut urls = Vec::new();
    #[cfg(feature = "mysql")]
    urls.push("mysql://root@127.0.0.1:1/none");
    #[cfg(feature = "postgres")]
    urls.push("postgres://postgres@127.0.0.1:1/none");
    for url in urls {
        let store =
            Store::connect(url, 2, Duration::from_millis(500), &std::env::temp_dir()).unwrap();
        match store.ping().await {
            Err(StoreError::Unavailable(_)) => {}
            other => panic!("{url}: {other:?}"),
        }
        assert!(matches!(
            store.find_session(A, h("x"), NOW).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(store.migrate(), Err(StoreError::Unavailable(_))));
    }
}

fn tk(s: &str, max_failures: u32) -> ThrottleKey {
    ThrottleKey {
        key: h(s),
        max_failures,
    }
}

const WINDOW: ThrottleWindow = ThrottleWindow {
    window: 60,
    lockout: 30,
};

/// A verification that fails: reserved, then counted.
async fn fail(store: &Store, keys: Vec<ThrottleKey>, now: i64) -> Option<i64> {
    let reserved = store
        .reserve_attempt(A, keys.clone(), WINDOW, now)
        .await
        .unwrap();
    assert_eq!(reserved, ThrottleAttempt::Reserved);
    let locked = store.record_failure(A, keys, WINDOW, now).await.unwrap();
    locked.map(|l| l.until)
}

/// A verification that succeeds: reserved, then given back (clearing `clear`).
async fn succeed(
    store: &Store,
    keys: Vec<ThrottleKey>,
    clear: Option<&str>,
    now: i64,
) -> Option<i64> {
    let reserved = store
        .reserve_attempt(A, keys.clone(), WINDOW, now)
        .await
        .unwrap();
    assert_eq!(reserved, ThrottleAttempt::Reserved);
    let hashes = keys.iter().map(|k| k.key).collect();
    store
        .release_attempt(A, hashes, clear.map(h), WINDOW, now)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttle_locks_after_max_failures_and_expires() {
    for (tdb, store) in stores() {
        let k = || vec![tk("a\0user\0alice", 3)];
        assert_eq!(
            store
                .find_lockout(A, vec![h("a\0user\0alice")], NOW)
                .await
                .unwrap(),
            None
        );
        assert_eq!(fail(&store, k(), NOW).await, None, "{tdb:?}");
        assert_eq!(fail(&store, k(), NOW + 1).await, None);
        assert_eq!(
            fail(&store, k(), NOW + 2).await,
            Some(NOW + 32),
            "{tdb:?}: the third failure locks"
        );
        let find = |now| store.find_lockout(A, vec![h("x"), h("a\0user\0alice")], now);
        assert_eq!(find(NOW + 3).await.unwrap(), Some(NOW + 32));
        // A locked key takes no reservation, right password or not.
        assert_eq!(
            store
                .reserve_attempt(A, k(), WINDOW, NOW + 3)
                .await
                .unwrap(),
            ThrottleAttempt::Locked(NOW + 32)
        );
        // Another tenant's key of the same hash is not locked.
        assert_eq!(
            store
                .find_lockout(B, vec![h("a\0user\0alice")], NOW + 3)
                .await
                .unwrap(),
            None
        );
        // The lockout ends; the count started over.
        assert_eq!(find(NOW + 32).await.unwrap(), None, "{tdb:?}");
        assert_eq!(fail(&store, k(), NOW + 33).await, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttle_window_passes_and_success_clears() {
    for (tdb, store) in stores() {
        let k = || vec![tk("k", 3)];
        fail(&store, k(), NOW).await;
        fail(&store, k(), NOW).await;
        // 60 s later the window has passed: this failure is the first of a new one.
        assert_eq!(fail(&store, k(), NOW + 60).await, None, "{tdb:?}");
        assert_eq!(fail(&store, k(), NOW + 61).await, None, "{tdb:?}");
        // A success forgets them.
        assert_eq!(succeed(&store, k(), Some("k"), NOW + 61).await, None);
        assert_eq!(fail(&store, k(), NOW + 62).await, None);
        assert_eq!(fail(&store, k(), NOW + 62).await, None);
        assert!(fail(&store, k(), NOW + 62).await.is_some());
        // Several keys at once: the one that reaches its limit locks the call.
        let both = vec![tk("ip", 100), tk("user2", 1)];
        assert_eq!(fail(&store, both, NOW).await, Some(NOW + 30), "{tdb:?}");
        assert_eq!(
            store.find_lockout(A, vec![h("ip")], NOW).await.unwrap(),
            None
        );
        // Purge removes rows whose window and lockout are over.
        assert!(
            store.purge_expired(NOW + 1000, 10).await.unwrap() >= 3,
            "{tdb:?}"
        );
        assert_eq!(
            store.find_lockout(A, vec![h("user2")], NOW).await.unwrap(),
            None
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_failures_are_all_counted() {
    for (tdb, store) in stores() {
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..24)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { fail(&store, vec![tk("hot", 25)], NOW).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), None, "{tdb:?}");
        }
        assert_eq!(
            store.find_lockout(A, vec![h("hot")], NOW).await.unwrap(),
            None
        );
        // 24 counted: the 25th locks.
        assert_eq!(
            fail(&store, vec![tk("hot", 25)], NOW).await,
            Some(NOW + 30),
            "{tdb:?}: a concurrent failure was lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_reservations_never_exceed_the_limit() {
    for (tdb, store) in stores() {
        let store = Arc::new(store);
        let keys = || vec![tk("burst", 5), tk("burst-ip", 1000)];
        let tasks: Vec<_> = (0..24)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.reserve_attempt(A, keys(), WINDOW, NOW).await })
            })
            .collect();
        let mut reserved = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                ThrottleAttempt::Reserved => reserved += 1,
                // All places are taken by verifications under way: ask again in a second.
                ThrottleAttempt::Locked(until) => assert_eq!(until, NOW + 1, "{tdb:?}"),
            }
        }
        assert_eq!(reserved, 5, "{tdb:?}: exactly the limit is reserved");
        // The five fail: the fifth locks the key.
        for i in 1..=5 {
            let locked = store
                .record_failure(A, keys(), WINDOW, NOW)
                .await
                .unwrap()
                .map(|l| l.until);
            assert_eq!(locked, (i == 5).then_some(NOW + 30), "{tdb:?}: failure {i}");
        }
        // The refused took no place under the other key: it holds five failures, nothing in flight.
        let ip = || vec![tk("burst-ip", 7)];
        for _ in 0..2 {
            let r = store.reserve_attempt(A, ip(), WINDOW, NOW).await.unwrap();
            assert_eq!(r, ThrottleAttempt::Reserved, "{tdb:?}");
        }
        assert_eq!(
            store.reserve_attempt(A, ip(), WINDOW, NOW).await.unwrap(),
            ThrottleAttempt::Locked(NOW + 1),
            "{tdb:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_success_gives_its_place_back_and_clears_only_the_user() {
    for (tdb, store) in stores() {
        let keys = || vec![tk("user", 3), tk("ip", 4)];
        fail(&store, keys(), NOW).await;
        fail(&store, keys(), NOW).await;
        assert_eq!(succeed(&store, keys(), Some("user"), NOW).await, None);
        // The user's failures are forgotten, the address's two are not.
        fail(&store, keys(), NOW).await;
        assert_eq!(
            fail(&store, keys(), NOW).await,
            Some(NOW + 30),
            "{tdb:?}: the address's fourth failure locks"
        );
        assert_eq!(
            store.find_lockout(A, vec![h("user")], NOW).await.unwrap(),
            None,
            "{tdb:?}: the user has two failures"
        );
        // A place given back is free again.
        let one = || vec![tk("one", 1)];
        assert_eq!(succeed(&store, one(), None, NOW).await, None);
        assert_eq!(succeed(&store, one(), None, NOW).await, None, "{tdb:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lockout_that_lands_during_a_verification_wins() {
    for (tdb, store) in stores() {
        let keys = || vec![tk("slow", 2)];
        // Reserved at the end of one window, verified until after it ended ...
        fail(&store, keys(), NOW).await;
        let r = store
            .reserve_attempt(A, keys(), WINDOW, NOW + 59)
            .await
            .unwrap();
        assert_eq!(r, ThrottleAttempt::Reserved);
        // ... while the new window's places fill with failures and lock the key.
        fail(&store, keys(), NOW + 60).await;
        assert_eq!(fail(&store, keys(), NOW + 60).await, Some(NOW + 90));
        // The slow verification succeeds: refused, and the lockout stays.
        assert_eq!(
            store
                .release_attempt(A, vec![h("slow")], Some(h("slow")), WINDOW, NOW + 61)
                .await
                .unwrap(),
            Some(NOW + 90),
            "{tdb:?}"
        );
        assert_eq!(
            store
                .find_lockout(A, vec![h("slow")], NOW + 61)
                .await
                .unwrap(),
            Some(NOW + 90)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn places_of_attempts_never_settled_come_back_with_the_window() {
    for (tdb, store) in stores() {
        let keys = || vec![tk("lost", 2)];
        for _ in 0..2 {
            let r = store.reserve_attempt(A, keys(), WINDOW, NOW).await.unwrap();
            assert_eq!(r, ThrottleAttempt::Reserved);
        }
        assert_eq!(
            store
                .reserve_attempt(A, keys(), WINDOW, NOW + 30)
                .await
                .unwrap(),
            ThrottleAttempt::Locked(NOW + 31),
            "{tdb:?}"
        );
        assert_eq!(
            store
                .reserve_attempt(A, keys(), WINDOW, NOW + 60)
                .await
                .unwrap(),
            ThrottleAttempt::Reserved,
            "{tdb:?}: a new window"
        );
    }
}
