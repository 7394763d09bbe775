//! Property tests of everything in ddb-core that reads outside input: conversation files and
//! speaker maps, cursors, the seed's clock, items of both row types, group-row previews and the
//! text rules. Never a panic; what is accepted keeps the rules; what is refused says where.

use aws_sdk_dynamodb::types::AttributeValue;
use ddb_core::patterns::Page;
use ddb_core::records::{
    check_text, format_ts, item_size, parse_ts, preview, Item, Key, MessageGroupRow, MessageRow, MAX_ITEM_BYTES,
};
use ddb_core::seed::{check_clock, Conversation, SpeakerMap, COURSE_SPEAKERS};
use ddb_core::ErrorKind;
use proptest::prelude::*;
use time::OffsetDateTime;
use uuid::Uuid;

/// Lines that look like a conversation's, with now and then a byte that should not be there.
fn conversation_bytes() -> impl Strategy<Value = Vec<u8>> {
    let speaker = prop_oneof![Just("Yaya2DevOps"), Just("Fan"), Just("Fan123"), Just("Stranger"), Just(""), Just(" ")];
    let text = prop_oneof![
        "[a-zA-Z0-9 ,.!?'-]{0,40}",
        "\\PC{0,20}",
        any::<String>().prop_map(|s| s.chars().take(30).collect()),
        Just("\u{1b}[2J clear".to_string()),
        Just("\t".to_string()),
    ];
    let line = (speaker, prop_oneof![Just(": "), Just(":"), Just(" - ")], text).prop_map(|(s, sep, t)| format!("{s}{sep}{t}"));
    let ending = prop_oneof![Just("\n"), Just("\r\n")];
    (proptest::collection::vec((line, ending), 0..12), proptest::option::of(any::<u8>()), any::<bool>()).prop_map(|(lines, junk, bom)| {
        let mut bytes: Vec<u8> = if bom { b"\xef\xbb\xbf".to_vec() } else { Vec::new() };
        for (l, e) in lines {
            bytes.extend_from_slice(l.as_bytes());
            bytes.extend_from_slice(e.as_bytes());
        }
        if let Some(b) = junk {
            let at = usize::from(b) % (bytes.len() + 1);
            bytes.insert(at, b);
        }
        bytes
    })
}

/// Items of any shape: the row types' attribute names, and others, with values of every type.
fn item() -> impl Strategy<Value = Item> {
    let name = prop_oneof![
        Just("pk"),
        Just("sk"),
        Just("message"),
        Just("message_uuid"),
        Just("message_group_uuid"),
        Just("user_uuid"),
        Just("user_display_name"),
        Just("user_handle"),
        Just("other")
    ];
    let group = Uuid::from_u128(0x5ae290ed_55d1_47a0_bc6d_fe2bc2700399);
    let text = prop_oneof![
        Just(format!("MSG#{group}")),
        Just(format!("GRP#{group}")),
        Just(group.to_string()),
        Just("2026-01-01T00:00:00.000000+00:00".to_string()),
        Just("2026-01-01T00:00:00Z".to_string()),
        Just("LOCK#seed".to_string()),
        "\\PC{0,12}",
    ];
    let value = prop_oneof![
        text.prop_map(AttributeValue::S),
        "-?[0-9]{1,5}".prop_map(AttributeValue::N),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null(true)),
        Just(AttributeValue::L(vec![AttributeValue::S("x".into())])),
    ];
    proptest::collection::hash_map(name.prop_map(str::to_string), value, 0..9)
}

fn any_time() -> impl Strategy<Value = OffsetDateTime> {
    // time's whole range (years -9999 to 9999), to the nanosecond.
    (-377_705_116_800i64..253_402_300_799i64, 0u32..1_000_000_000).prop_map(|(s, ns)| {
        OffsetDateTime::from_unix_timestamp(s).unwrap().replace_nanosecond(ns).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn conversations_parse_or_say_where_and_never_panic(bytes in conversation_bytes()) {
        let speakers = SpeakerMap::parse(COURSE_SPEAKERS, "speakers").unwrap();
        match Conversation::parse(&bytes, "f", &speakers) {
            Ok(c) => {
                prop_assert!(!c.lines.is_empty());
                for l in &c.lines {
                    prop_assert!(check_text(&l.text).is_ok(), "{:?}", l.text);
                    prop_assert!(speakers.handle("Yaya2DevOps") == Some(l.handle.as_str()) || l.handle == "bayko");
                }
            }
            Err(e) => {
                prop_assert_eq!(e.kind(), ErrorKind::Input);
                prop_assert!(e.to_string().starts_with("f:") || e.to_string().starts_with("f: "), "{}", e);
            }
        }
    }

    #[test]
    fn speaker_maps_parse_or_say_where(text in "\\PC{0,40}(\n\\PC{0,40}){0,4}") {
        if let Err(e) = SpeakerMap::parse(&text, "s") {
            prop_assert!(e.to_string().starts_with("s:"), "{}", e);
        }
    }

    #[test]
    fn cursors_become_table_keys_or_are_refused(before in prop_oneof!["\\PC{0,40}", any_time().prop_map(|t| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())], limit in -5i32..1100) {
        let page = Page { limit, before: Some(before.clone()) };
        match page.sort_key() {
            Ok(Some(key)) => {
                // A key of the table's one format: it parses, and it is not before the cursor.
                let k = parse_ts(&key).unwrap();
                prop_assert_eq!(format_ts(k), key);
                prop_assert!(k >= parse_ts(&before).unwrap());
            }
            Ok(None) => prop_assert!(false, "a cursor was given"),
            Err(e) => prop_assert!(matches!(e.kind(), ErrorKind::Input), "{}", e),
        }
    }

    #[test]
    fn clocks_the_seed_accepts_give_keys_that_sort(now in any_time()) {
        let real = OffsetDateTime::now_utc();
        if let Ok(t) = check_clock(now, real) {
            let (start, end) = (format_ts(t - time::Duration::days(1)), format_ts(t));
            prop_assert!(start.len() == 32 && end.len() == 32 && start < end, "{start} {end}");
            prop_assert!(!start.starts_with('-') && !start.starts_with("0000"));
        } else {
            prop_assert!(now - time::Duration::days(1) < time::macros::datetime!(0001-01-01 00:00 UTC) || now > real + time::Duration::days(366));
        }
    }

    #[test]
    fn rows_read_from_any_item_never_panic_and_round_trip(item in item()) {
        if let Ok(m) = MessageRow::from_item(&item) {
            prop_assert_eq!(MessageRow::from_item(&m.to_item()).unwrap(), m);
        }
        if let Ok(g) = MessageGroupRow::from_item(&item) {
            prop_assert_eq!(MessageGroupRow::from_item(&g.to_item()).unwrap(), g);
        }
        if let Some(k) = Key::of(&item) {
            prop_assert_eq!(Key::of(&k.to_item()), Some(k));
        }
    }

    #[test]
    fn group_rows_always_fit_whatever_their_message(len in 0usize..MAX_ITEM_BYTES, c in prop_oneof![Just('x'), Just('é'), Just('語'), Just('😀')], name in "\\PC{0,64}") {
        let text: String = std::iter::repeat(c).take(len / c.len_utf8()).collect();
        let m = MessageRow {
            message_group_uuid: Uuid::nil(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            message_uuid: Uuid::nil(),
            message: text.clone(),
            user_uuid: Uuid::nil(),
            user_display_name: name.clone(),
            user_handle: name.clone(),
        };
        let row = MessageGroupRow { owner_uuid: Uuid::nil(), last_message_at: OffsetDateTime::UNIX_EPOCH, message_group_uuid: Uuid::nil(), message: String::new(), user_uuid: Uuid::nil(), user_display_name: name.clone(), user_handle: name };
        let moved = row.onto(&m);
        prop_assert!(item_size(&moved.to_item()) <= MAX_ITEM_BYTES);
        prop_assert!(text.starts_with(&moved.message));
        prop_assert!(moved.is_on(&m));
        if item_size(&m.to_item()) + 64 <= MAX_ITEM_BYTES {
            prop_assert_eq!(&moved.message, &text, "a message with room to spare is carried whole");
        }
    }

    #[test]
    fn previews_are_prefixes_on_character_boundaries(text in "\\PC{0,64}", max in 0usize..80) {
        let p = preview(&text, max);
        prop_assert!(p.len() <= max && text.starts_with(p));
        prop_assert!(p.len() == text.len() || p.len() + 4 > max);
    }

    #[test]
    fn accepted_text_holds_no_control_character(text in any::<String>()) {
        if check_text(&text).is_ok() {
            prop_assert!(!text.trim().is_empty());
            prop_assert!(text.chars().all(|c| !c.is_control() || c == '\t'));
        }
    }
}
