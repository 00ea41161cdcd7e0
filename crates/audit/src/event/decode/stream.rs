//! An `EventList` read in one pass.
//!
//! The general path reads a document's `items` as raw JSON (one pass over the batch), splits it
//! into raw members (a second) and parses each member (a third). The API server's webhook and
//! log backends write `kind` before `items`, so once `kind` has said `EventList`, each member
//! can be decoded where the parser stands: one pass, which is most of the cost of detection
//! behind `osprey serve`. A document that is shaped otherwise (`items` before `kind`, another
//! key first, `items` that is not a list) leaves this path before it has given anything to the
//! sink and goes the general way. So does the rest of a list from a member the typed pass
//! refuses (a duplicate key): the general path reads each member alone, so that one member's
//! error does not cost the members after it.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::value::MapAccessDeserializer};
use std::fmt;

use super::{DecodeError, Decoder, Doc, LStr, Outer, Run, json_error};
use crate::event::{Event, Shape};

/// What the one pass does with each member.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Decodes it and gives it to the sink.
    Decode,
    /// Only checks it is an event as [`Decoder::decode`] would take it (an object with a verb
    /// or a request URI) and counts it: what the webhook needs before it keeps a batch.
    Count,
}

/// How far the one pass went.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Streamed {
    /// Not an EventList written `kind` first: nothing was given to the sink.
    Not,
    /// Read to its end (or to a syntax error or the member limit, which are recorded).
    Whole,
    /// The members before this one were read; this one was refused by the typed pass, and
    /// the general path goes on from it.
    From(usize),
}

/// What the one pass did.
#[derive(Default)]
struct Progress {
    /// Members read (given, or recorded as not events).
    members: usize,
    /// The members are being (or were) decoded: the sink may have been given events, so the
    /// general path must not run again.
    streamed: bool,
    /// Why decoding stopped early, when it was not the JSON (the member limit).
    stop: Option<DecodeError>,
}

impl Decoder {
    /// Decodes `text` in one pass when it is an `EventList` whose `kind` comes first.
    pub(super) fn stream_list<F>(
        &self,
        text: &str,
        outer: &Outer<'_>,
        run: &mut Run<'_, F>,
        mode: Mode,
    ) -> Streamed
    where
        F: FnMut(Event<'_>),
    {
        let mut progress = Progress::default();
        let mut de = serde_json::Deserializer::from_str(text);
        let list = List(Pass {
            mode,
            decoder: self,
            outer,
            run: &mut *run,
            progress: &mut progress,
        });
        let result = de.deserialize_map(list).and_then(|_| de.end());
        if !progress.streamed {
            return Streamed::Not;
        }
        match (progress.stop, result) {
            (Some(stop), _) => run.errors.push(stop),
            (None, Err(e)) if e.is_data() => return Streamed::From(progress.members),
            // Syntax after some members were decoded: those stay given, the rest is lost.
            (None, Err(e)) => run.errors.push(json_error(e)),
            (None, Ok(())) => {}
        }
        Streamed::Whole
    }
}

/// What every step of the one pass reads and writes.
struct Pass<'r, 'o, 's, F> {
    mode: Mode,
    decoder: &'r Decoder,
    outer: &'r Outer<'o>,
    run: &'r mut Run<'s, F>,
    progress: &'r mut Progress,
}

impl<'o, 's, F> Pass<'_, 'o, 's, F> {
    /// The same pass, for a step further down.
    fn reborrow(&mut self) -> Pass<'_, 'o, 's, F> {
        Pass {
            mode: self.mode,
            decoder: self.decoder,
            outer: self.outer,
            run: &mut *self.run,
            progress: &mut *self.progress,
        }
    }
}

/// The document: `kind`, then `apiVersion`/`metadata` in any order, then `items`.
struct List<'r, 'o, 's, F>(Pass<'r, 'o, 's, F>);

impl<'de, F: FnMut(Event<'_>)> Visitor<'de> for List<'_, '_, '_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an EventList")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let mut list = false;
        while let Some(LStr(key)) = map.next_key::<LStr<'de>>()? {
            let key = key.unwrap_or_default();
            if self.0.progress.streamed {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            match key.as_ref() {
                "kind" => {
                    let LStr(kind) = map.next_value::<LStr<'de>>()?;
                    if kind.as_deref() != Some("EventList") {
                        return Err(de::Error::custom("not an EventList"));
                    }
                    list = true;
                }
                "apiVersion" | "metadata" if list => {
                    map.next_value::<IgnoredAny>()?;
                }
                "items" if list => {
                    map.next_value_seed(Items(self.0.reborrow()))?;
                    if !self.0.progress.streamed {
                        return Err(de::Error::custom("items is not a list"));
                    }
                }
                _ => return Err(de::Error::custom("not an EventList written kind first")),
            }
        }
        if self.0.progress.streamed {
            Ok(())
        } else {
            Err(de::Error::custom("EventList without items"))
        }
    }
}

/// `items`: decoded member by member when it is a list.
struct Items<'r, 'o, 's, F>(Pass<'r, 'o, 's, F>);

impl<'de, F: FnMut(Event<'_>)> DeserializeSeed<'de> for Items<'_, '_, '_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(Event<'_>)> Visitor<'de> for Items<'_, '_, '_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.0.progress.streamed = true;
        loop {
            if seq.next_element_seed(Member(self.0.reborrow()))?.is_none() {
                return Ok(());
            }
        }
    }
}

/// One member of `items`; one that is not an object is reported and skipped.
struct Member<'r, 'o, 's, F>(Pass<'r, 'o, 's, F>);

impl<'de, F: FnMut(Event<'_>)> DeserializeSeed<'de> for Member<'_, '_, '_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let limit = self.0.decoder.limits.max_events_per_document;
        if self.0.run.n + self.0.run.errors.len() >= limit {
            self.0.progress.stop = Some(DecodeError::TooLarge {
                what: "events in one document",
                limit,
            });
            return Err(de::Error::custom("too many events"));
        }
        let not_an_object =
            || DecodeError::NotAnEvent("a member of the EventList is not an object".into());
        let result = match self.0.mode {
            Mode::Decode => match d.deserialize_any(MemberVisitor)? {
                Some(doc) => {
                    self.0
                        .decoder
                        .decode_event(doc, Shape::Kubernetes, self.0.outer, self.0.run)
                }
                None => Err(not_an_object()),
            },
            Mode::Count => match d.deserialize_any(CountVisitor)? {
                Some(true) => {
                    self.0.run.n += 1;
                    Ok(())
                }
                Some(false) => Err(DecodeError::NotAnEvent("event without verb".into())),
                None => Err(not_an_object()),
            },
        };
        // One bad member of a batch is reported; the others still count.
        if let Err(e) = result {
            self.0.run.errors.push(e);
        }
        self.0.progress.members += 1;
        Ok(())
    }
}

/// The `visit_*` methods of a member visitor for scalars: not an object, `None`.
macro_rules! not_an_object {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    };
}

/// A member read as an event's keys, or `None` when it is not an object (read past).
struct MemberVisitor;

impl<'de> Visitor<'de> for MemberVisitor {
    type Value = Option<Doc<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an audit event")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Doc::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    not_an_object!();
}

/// A member read past: `None` when it is not an object, else whether it names a verb or a
/// request URI (as a string), which is what makes an object an event to the decoder.
struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an audit event")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut event = false;
        while let Some(LStr(key)) = map.next_key::<LStr<'de>>()? {
            if !event && matches!(key.as_deref(), Some("verb" | "requestURI")) {
                let LStr(value) = map.next_value::<LStr<'de>>()?;
                event = value.is_some();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Some(event))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        MemberVisitor.visit_seq(seq).map(|_| None)
    }
    not_an_object!();
}

#[cfg(test)]
mod tests {
    use super::super::DecodeLimits;
    use super::super::tests::{EXEC, all};
    use super::*;

    fn second() -> String {
        EXEC.replace("\"a1\"", "\"a2\"").replace("alice", "bob")
    }

    #[test]
    fn one_pass_reads_what_the_general_path_reads() {
        let kind_first = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{EXEC},{}]}}"#,
            second()
        );
        let items_first = format!(
            r#"{{"items":[{EXEC},{}],"kind":"EventList","apiVersion":"audit.k8s.io/v1"}}"#,
            second()
        );
        let mut streamed = Vec::new();
        let mut run = Run {
            n: 0,
            errors: Vec::new(),
            skip: 0,
            sink: &mut |e: Event<'_>| streamed.push(format!("{:?}", e.into_owned())),
        };
        let d = Decoder::default();
        let mut one_pass =
            |doc: &str| d.stream_list(doc, &Outer::default(), &mut run, Mode::Decode);
        assert_eq!(one_pass(&kind_first), Streamed::Whole);
        assert_eq!(one_pass(&items_first), Streamed::Not);
        assert_eq!((run.n, run.errors.len()), (2, 0));
        let general: Vec<String> = all(&items_first)
            .unwrap()
            .into_iter()
            .map(|e| format!("{e:?}"))
            .collect();
        assert_eq!(streamed, general);
        assert!(streamed[1].contains("bob"));
    }

    #[test]
    fn a_list_cut_short_keeps_the_events_before_the_cut_and_says_so() {
        let doc = format!(r#"{{"kind":"EventList","items":[{EXEC},{}"#, second());
        let cut = &doc[..doc.len() - 20];
        let mut n = 0;
        let d = Decoder::default().decode(cut.as_bytes(), &mut |_| n += 1);
        assert_eq!((d.events, n), (1, 1));
        assert!(
            matches!(d.errors[..], [DecodeError::Syntax(_)]),
            "{:?}",
            d.errors
        );
    }

    #[test]
    fn other_shapes_go_the_general_way() {
        for doc in [
            EXEC.to_string(),
            format!(r#"{{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":[{EXEC}]}}"#),
            format!(r#"{{"records":[{{"properties":{{"log":{EXEC}}}}}]}}"#),
        ] {
            let mut run = Run {
                n: 0,
                errors: Vec::new(),
                skip: 0,
                sink: &mut |_: Event<'_>| {},
            };
            let one_pass =
                Decoder::default().stream_list(&doc, &Outer::default(), &mut run, Mode::Decode);
            assert_eq!(one_pass, Streamed::Not);
            assert_eq!((run.n, run.errors.len()), (0, 0));
            assert_eq!(all(&doc).unwrap().len(), 1, "{doc}");
        }
        // Members that are not objects are reported one by one.
        let doc = format!(r#"{{"kind":"EventList","items":[7,{EXEC},[1,{{}}],"x",null]}}"#);
        let d = Decoder::default().decode(doc.as_bytes(), &mut |_| {});
        assert_eq!(d.events, 1);
        assert_eq!(d.errors.len(), 4, "{:?}", d.errors);
    }

    #[test]
    fn a_member_the_typed_pass_refuses_costs_only_itself() {
        let dup = r#"{"verb":"get","verb":"list","requestURI":"/x"}"#;
        let doc = format!(
            r#"{{"kind":"EventList","items":[{EXEC},{dup},{}]}}"#,
            second()
        );
        let mut users = Vec::new();
        let d = Decoder::default().decode(doc.as_bytes(), &mut |e| {
            users.push(e.user.username.to_string())
        });
        assert_eq!(users, ["alice", "bob"], "each event given once");
        assert_eq!(d.events, 2);
        assert!(
            matches!(&d.errors[..], [DecodeError::Json(m)] if m.contains("duplicate")),
            "{:?}",
            d.errors
        );
    }

    #[test]
    fn counting_takes_what_decoding_takes() {
        let docs = [
            format!(
                r#"{{"kind":"EventList","items":[7,{EXEC},[1,{{}}],{{"verb":null}},{{"requestURI":"/x"}},{}]}}"#,
                second()
            ),
            format!(r#"{{"kind":"EventList","items":[{EXEC},{EXEC}"#),
            format!(r#"{{"items":[{EXEC}],"kind":"EventList"}}"#),
            EXEC.to_string(),
            r#"{"kind":"EventList","items":[{"kind":"Event"}]}"#.to_string(),
            "[1,2]".to_string(),
        ];
        for doc in docs {
            let decoded = Decoder::default().decode(doc.as_bytes(), &mut |_| {});
            let counted = Decoder::default().count(doc.as_bytes());
            assert_eq!(counted.events, decoded.events, "{doc}");
            assert_eq!(counted.errors, decoded.errors, "{doc}");
        }
        let limited = Decoder::new(DecodeLimits {
            max_events_per_document: 1,
            ..DecodeLimits::default()
        });
        let doc = format!(r#"{{"kind":"EventList","items":[{EXEC},{EXEC}]}}"#);
        let counted = limited.count(doc.as_bytes());
        assert_eq!(counted.events, 1);
        assert!(matches!(counted.errors[..], [DecodeError::TooLarge { .. }]));
    }
}
