//! DaemonSets: upstream's storage keeps a template generation, shown in apps/v1 as the annotation
//! `deprecated.daemonset.template.generation` (1 at create, +1 whenever the pod template changes); the
//! DaemonSet controller labels pods with it (`pod-template-generation`).

use serde_json::{Value, json};

use super::Strategy;

const ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// The DaemonSet strategy.
pub(crate) struct DaemonSet;

/// The one instance.
pub(crate) static DAEMONSET: DaemonSet = DaemonSet;

fn generation(obj: &Value) -> Option<i64> {
    obj.pointer(&format!("/metadata/annotations/{}", ANNOTATION.replace('/', "~1")))?.as_str()?.parse().ok()
}

fn set_generation(obj: &mut Value, g: i64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let ann = meta.entry("annotations").or_insert_with(|| json!({}));
        if !ann.is_object() {
            *ann = json!({});
        }
        if let Some(a) = ann.as_object_mut() {
            a.insert(ANNOTATION.to_owned(), json!(g.to_string()));
        }
    }
}

impl Strategy for DaemonSet {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn prepare_create(&self, obj: &mut Value) {
        set_generation(obj, 1);
    }
    fn prepare_update(&self, new: &mut Value, old: &Value) {
        let before = generation(old).unwrap_or(1);
        let changed = new.pointer("/spec/template") != old.pointer("/spec/template");
        set_generation(new, if changed { before + 1 } else { before });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_generation_counts_template_changes() {
        let mut ds = json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {"x": 1}}}});
        DAEMONSET.prepare_create(&mut ds);
        assert_eq!(generation(&ds), Some(1));
        let mut same = ds.clone();
        same["spec"]["minReadySeconds"] = json!(3);
        DAEMONSET.prepare_update(&mut same, &ds);
        assert_eq!(generation(&same), Some(1));
        let mut changed = same.clone();
        changed["spec"]["template"]["spec"]["x"] = json!(2);
        DAEMONSET.prepare_update(&mut changed, &same);
        assert_eq!(generation(&changed), Some(2));
    }
}
