//! Probe and hook ports: a number, or the name of one of the container's ports (upstream's
//! `ResolveContainerPort`, with its error texts).

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The port number `param` designates in `container`.
pub(crate) fn resolve(param: &IntOrString, container: &Container) -> Result<u16, String> {
    let port: i64 = match param {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            let named = container.ports.iter().flatten().find(|p| p.name.as_deref() == Some(name.as_str()));
            match named {
                Some(p) => i64::from(p.container_port),
                // Last resort, as upstream: a number written as a string.
                None => match name.parse::<i64>() {
                    Ok(n) => n,
                    Err(_) => {
                        return Err(format!("strconv.Atoi: parsing {}: invalid syntax", crate::gostr::quote(name)));
                    }
                },
            }
        }
    };
    match u16::try_from(port) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("invalid port number: {port}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    #[test]
    fn numbers_names_and_errors() {
        let c = Container {
            ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() }]),
            ..Default::default()
        };
        assert_eq!(resolve(&IntOrString::Int(80), &c), Ok(80));
        assert_eq!(resolve(&IntOrString::String("http".into()), &c), Ok(8080));
        assert_eq!(resolve(&IntOrString::String("81".into()), &c), Ok(81));
        assert_eq!(
            resolve(&IntOrString::String("web".into()), &c),
            Err(r#"strconv.Atoi: parsing "web": invalid syntax"#.to_owned())
        );
        assert_eq!(resolve(&IntOrString::Int(0), &c), Err("invalid port number: 0".to_owned()));
        assert_eq!(resolve(&IntOrString::Int(70000), &c), Err("invalid port number: 70000".to_owned()));
    }
}
