//! The API's calls as typed functions over [`HttpClient`]: checkin, creating and cancelling a
//! match, posting an event. Each checks the status the API answers on success and turns any
//! other answer into an error that names the server and what it said.

use anyhow::{anyhow, bail};
use matchstream_protocol::api::{new_match_body, parse_event_json, posted_event_body};
use matchstream_protocol::{Event, MatchId, NewMatch, PostedEvent};

use crate::http_client::{HttpClient, HttpResponse};

/// Where checkin sends a subscriber (`GET /1/checkin`'s answer).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Checkin {
    /// Host to connect to.
    pub host: String,
    /// Stream port.
    pub port: u16,
}

/// The id the server gives the match `new`.
pub fn match_id(new: &NewMatch) -> MatchId {
    MatchId::new(&new.home, &new.visit, new.start_date)
}

/// `401` is most often a wrong or missing token: say so.
fn token_hint(response: &HttpResponse) -> &'static str {
    if response.status == 401 {
        " (wrong or missing --token?)"
    } else {
        ""
    }
}

impl HttpClient {
    /// `GET /1/checkin`: the host and stream port to connect to.
    pub fn checkin(&mut self) -> anyhow::Result<Checkin> {
        let response = self.get("/1/checkin")?;
        if !response.is_success() {
            bail!(
                "checkin at {} failed: {}",
                self.base_url(),
                response.error_text()
            );
        }
        let v = response.json()?;
        let host = v.get("host").and_then(|h| h.as_str());
        let port = v
            .get("port")
            .and_then(|p| p.as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0);
        match (host, port) {
            (Some(host), Some(port)) if !host.is_empty() => Ok(Checkin {
                host: host.to_owned(),
                port,
            }),
            _ => bail!(
                "checkin at {} gave no usable host and port: {v}",
                self.base_url()
            ),
        }
    }

    /// `POST /1/matches`: the new match's id, or `Ok(None)` if a match of that id exists.
    pub fn create_match(&mut self, new: &NewMatch) -> anyhow::Result<Option<MatchId>> {
        let id = match_id(new);
        let response = self.post_json("/1/matches", &new_match_body(new))?;
        match response.status {
            201 => {
                let created = response.json()?;
                let given = created
                    .get("id")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| anyhow!("the server created {id} but answered no id"))?;
                Ok(Some(MatchId::parse(given).map_err(|e| {
                    anyhow!("the server created {id} under a bad id {given:?}: {e}")
                })?))
            }
            409 => Ok(None),
            _ => bail!(
                "cannot create the match {id} on {}: {}{}",
                self.base_url(),
                response.error_text(),
                token_hint(&response)
            ),
        }
    }

    /// `DELETE /1/match/<id>`: `Ok(false)` if there was no such match.
    pub fn cancel_match(&mut self, id: &MatchId) -> anyhow::Result<bool> {
        let response = self.delete(&format!("/1/match/{id}"))?;
        match response.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => bail!(
                "cannot cancel the match {id} on {}: {}{}",
                self.base_url(),
                response.error_text(),
                token_hint(&response)
            ),
        }
    }

    /// `POST /1/match/<id>/events`: the event as the server stored it (with its seq).
    pub fn post_event(&mut self, id: &MatchId, event: &PostedEvent) -> anyhow::Result<Event> {
        let response =
            self.post_json(&format!("/1/match/{id}/events"), &posted_event_body(event))?;
        if !response.is_success() {
            bail!(
                "refused by {}: {}{}",
                self.base_url(),
                response.error_text(),
                token_hint(&response)
            );
        }
        parse_event_json(&response.json()?, id).map_err(|e| anyhow!("unexpected answer: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Answer, TestServer};
    use matchstream_protocol::{Date, EventKind, TeamCode};

    fn answer(status: &str, body: &str) -> Answer {
        Answer::Keep(format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    fn sample() -> NewMatch {
        NewMatch {
            home: TeamCode::parse("elp").expect("team"),
            visit: TeamCode::parse("tig").expect("team"),
            start_date: Date::parse("2011-09-10").expect("date"),
            stadium: None,
            home_players: Vec::new(),
            visit_players: Vec::new(),
        }
    }

    #[test]
    fn calls_read_their_answers() {
        let stored =
            r#"{"match":"elp-tig-2011-09-10","seq":2,"timestamp":1315921731000,"kind":"start"}"#;
        let server = TestServer::start(vec![
            answer("200 OK", r#"{"host":"127.0.0.1","port":9100}"#),
            answer("201 Created", r#"{"id":"elp-tig-2011-09-10"}"#),
            answer("409 Conflict", r#"{"error":"match exists"}"#),
            answer("201 Created", stored),
            answer("204 No Content", ""),
            answer("404 Not Found", r#"{"error":"unknown match"}"#),
        ]);
        let mut client = HttpClient::new(&server.url)
            .expect("client")
            .with_token("T");
        let checkin = client.checkin().expect("checkin");
        assert_eq!((checkin.host.as_str(), checkin.port), ("127.0.0.1", 9100));
        let id = client
            .create_match(&sample())
            .expect("create")
            .expect("new");
        assert_eq!(id, match_id(&sample()));
        assert_eq!(client.create_match(&sample()).expect("exists"), None);
        let event = client
            .post_event(&id, &PostedEvent::new(EventKind::Start))
            .expect("post");
        assert_eq!((event.seq, event.kind), (2, EventKind::Start));
        assert!(client.cancel_match(&id).expect("cancel"));
        assert!(!client.cancel_match(&id).expect("already gone"));
        let (requests, connections) = server.finish();
        let lines: Vec<&str> = requests.iter().filter_map(|r| r.lines().next()).collect();
        assert_eq!(
            lines,
            [
                "GET /1/checkin HTTP/1.1",
                "POST /1/matches HTTP/1.1",
                "POST /1/matches HTTP/1.1",
                "POST /1/match/elp-tig-2011-09-10/events HTTP/1.1",
                "DELETE /1/match/elp-tig-2011-09-10 HTTP/1.1",
                "DELETE /1/match/elp-tig-2011-09-10 HTTP/1.1",
            ]
        );
        assert!(requests[1].contains("Authorization: Bearer T\r\n"));
        assert_eq!(connections, 1);
    }

    #[test]
    fn refusals_say_who_refused_and_why() {
        let server = TestServer::start(vec![
            answer("200 OK", r#"{"host":"","port":9100}"#),
            answer("401 Unauthorized", r#"{"error":"unauthorized"}"#),
            answer("409 Conflict", r#"{"error":"match is over"}"#),
        ]);
        let url = server.url.clone();
        let mut client = HttpClient::new(&url).expect("client");
        let text = client.checkin().expect_err("no host").to_string();
        assert!(text.contains("no usable host and port"), "{text}");
        let text = client.create_match(&sample()).expect_err("401").to_string();
        assert!(
            text.ends_with("401 unauthorized (wrong or missing --token?)"),
            "{text}"
        );
        let id = match_id(&sample());
        let text = client
            .post_event(&id, &PostedEvent::new(EventKind::Goal))
            .expect_err("409")
            .to_string();
        assert_eq!(text, format!("refused by {url}: 409 match is over"));
        server.finish();
    }
}
