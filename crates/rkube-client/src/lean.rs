//! Watching objects without decoding their `metadata.managedFields`.
//!
//! Upstream's scheduler and controller manager drop managedFields from their informers' caches after decoding
//! (nothing in them reads the field). Decoding is the expensive part: a pod's managedFields are a JSON tree per
//! field manager, decoded into `serde_json::Value`s only to be thrown away, about 40% of decoding a pod. Here
//! the watched objects are decoded through a filter that skips that one field in the JSON as it streams past.
//!
//! Written by hand: serde offers the parts ([`MapAccessDeserializer`] turns a map being read into a
//! deserializer) but no crate filters a key out of a nested map while the target type deserializes itself.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::value::{MapAccessDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// `K` decoded without `metadata.managedFields` (left `None`). Only for reading: it is never sent back.
#[derive(Clone, Debug)]
pub struct Lean<K>(pub K);

impl<K: Resource> Resource for Lean<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }

    // A metadata-only `K` (PartialObjectMeta) must stay one: kube asks the server for metadata by this.
    fn metadata_api() -> bool {
        K::metadata_api()
    }

    fn url_path(dt: &Self::DynamicType, namespace: Option<&str>) -> String {
        K::url_path(dt, namespace)
    }

    fn meta(&self) -> &ObjectMeta {
        self.0.meta()
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0.meta_mut()
    }
}

// kube's `Api` asks for `Serialize` on some of its methods; a `Lean` object is the object without one field.
impl<K: Serialize> Serialize for Lean<K> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, K: Deserialize<'de>> Deserialize<'de> for Lean<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor(PhantomData)).map(Lean)
    }
}

/// The object: every key is handed on, and the value of `metadata` goes through [`MetadataSeed`].
struct ObjectVisitor<K>(PhantomData<K>);

impl<'de, K: Deserialize<'de>> Visitor<'de> for ObjectVisitor<K> {
    type Value = K;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<K, A::Error> {
        K::deserialize(MapAccessDeserializer::new(Filter {
            inner: map,
            skip: None,
            nested: Some("metadata"),
            in_nested: false,
        }))
    }
}

/// A map read through: entries under the key `skip` are dropped, and the value under `nested` is read through
/// a filter that drops `managedFields`.
struct Filter<A> {
    inner: A,
    skip: Option<&'static str>,
    nested: Option<&'static str>,
    in_nested: bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Filter<A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key::<String>()? else { return Ok(None) };
            if self.skip == Some(key.as_str()) {
                self.inner.next_value::<IgnoredAny>()?;
                continue;
            }
            self.in_nested = self.nested == Some(key.as_str());
            let key: StringDeserializer<A::Error> = key.into_deserializer();
            return seed.deserialize(key).map(Some);
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        match self.in_nested {
            true => self.inner.next_value_seed(MetadataSeed(seed)),
            false => self.inner.next_value_seed(seed),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// The `metadata` value: read as a map without `managedFields` (a `null` is handed on as it is).
struct MetadataSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for MetadataSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        d.deserialize_any(MetadataVisitor(self.0))
    }
}

struct MetadataVisitor<S>(S);

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for MetadataVisitor<S> {
    type Value = S::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("object metadata")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<S::Value, A::Error> {
        let filter = Filter { inner: map, skip: Some("managedFields"), nested: None, in_nested: false };
        self.0.deserialize(PresentMap(MapAccessDeserializer::new(filter)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<S::Value, E> {
        self.0.deserialize(().into_deserializer())
    }
}

/// A map read through, as the value of a field the target may hold as an `Option` (k8s-openapi reads every
/// field so): present, so `Some`. [`MapAccessDeserializer`] alone would offer the map to the `Option`'s visitor.
struct PresentMap<A>(MapAccessDeserializer<A>);

impl<'de, A: MapAccess<'de>> Deserializer<'de> for PresentMap<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_some(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct
        newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// Watches every `K` in the cluster that `config` selects (list, then watch, with kube's backoff), decoding
/// without managedFields.
pub fn watch_all<K>(
    client: Client,
    config: watcher::Config,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + fmt::Debug + for<'de> Deserialize<'de> + Send + 'static,
    K::DynamicType: Default,
{
    watch_all_with(client, &K::DynamicType::default(), config)
}

/// [`watch_all`] for a kind known at run time (`dt`).
pub fn watch_all_with<K>(
    client: Client,
    dt: &K::DynamicType,
    config: watcher::Config,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K>
where
    K: Resource + Clone + fmt::Debug + for<'de> Deserialize<'de> + Send + 'static,
{
    let api = Api::<Lean<K>>::all_with(client, dt);
    watcher::watcher(api, config).default_backoff().map(|ev| ev.map(unwrap_event))
}

fn unwrap_event<K>(ev: watcher::Event<Lean<K>>) -> watcher::Event<K> {
    match ev {
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(o.0),
        watcher::Event::InitDone => watcher::Event::InitDone,
        watcher::Event::Apply(o) => watcher::Event::Apply(o.0),
        watcher::Event::Delete(o) => watcher::Event::Delete(o.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"ns",
        "labels":{"managedFields":"a label, kept"},
        "managedFields":[{"manager":"kubectl","operation":"Update","fieldsType":"FieldsV1",
            "fieldsV1":{"f:spec":{"f:containers":{}}}}],
        "resourceVersion":"7"},
        "spec":{"containers":[{"name":"c","image":"i"}],"nodeName":"n1"},
        "status":{"phase":"Running"}}"#;

    #[test]
    fn decodes_everything_but_managed_fields() {
        let full: Pod = serde_json::from_str(POD).expect("pod");
        let lean: Lean<Pod> = serde_json::from_str(POD).expect("lean pod");
        assert!(full.metadata.managed_fields.is_some());
        assert_eq!(lean.0.metadata.managed_fields, None);
        let mut expected = full;
        expected.metadata.managed_fields = None;
        assert_eq!(lean.0, expected, "every other field, at every depth, as the full decode has it");
    }

    #[test]
    fn watch_events_and_lists_decode_through_it() {
        let line = format!(r#"{{"type":"MODIFIED","object":{POD}}}"#);
        let ev: kube::api::WatchEvent<Lean<Pod>> = serde_json::from_str(&line).expect("watch event");
        assert!(
            matches!(ev, kube::api::WatchEvent::Modified(p) if p.0.spec.as_ref().is_some_and(|s| s.node_name.as_deref() == Some("n1")))
        );
        let list =
            format!(r#"{{"apiVersion":"v1","kind":"PodList","metadata":{{"resourceVersion":"9"}},"items":[{POD}]}}"#);
        let list: kube::core::ObjectList<Lean<Pod>> = serde_json::from_str(&list).expect("list");
        assert_eq!(list.items[0].0.metadata.name.as_deref(), Some("p"));
    }

    #[test]
    fn metadata_only_objects_stay_metadata_only() {
        use kube::api::DynamicObject;
        use kube::core::PartialObjectMeta;
        type Meta = PartialObjectMeta<DynamicObject>;
        assert!(<Lean<Meta> as Resource>::metadata_api(), "kube asks the server for metadata by this");
        let json = r#"{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata","metadata":{"name":"p",
            "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"u1"}],
            "managedFields":[{"manager":"m","fieldsV1":{"f:metadata":{}}}]}}"#;
        let lean: Lean<Meta> = serde_json::from_str(json).expect("partial object");
        assert_eq!(lean.0.metadata.managed_fields, None);
        let owners = lean.0.metadata.owner_references.expect("owners kept");
        assert_eq!(owners[0].uid, "u1");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<Lean<Pod>>(r#"{"metadata":{"managedFields":[}}"#).is_err());
        assert!(serde_json::from_str::<Lean<Pod>>(r#"{"metadata":{"name":5}}"#).is_err());
        assert!(serde_json::from_str::<Lean<Pod>>("[1]").is_err());
        let null_meta: Lean<Pod> = serde_json::from_str(r#"{"metadata":null}"#).expect("null metadata");
        assert_eq!(null_meta.0.metadata, ObjectMeta::default());
    }
}
