//! Enums whose variants have fixed names in the API, the store and the notices.
//!
//! [`named_enum!`] declares such an enum from one list of `Variant => "name"` pairs and
//! derives `ALL`, `as_str` and `parse` from it, so a variant can never be written (to a
//! row, a notice, an answer) without also being readable back (a filter, a restart). The
//! serde names follow `rename_all = "snake_case"`; a test checks they agree with
//! `as_str` for every variant.

/// Declares a `Copy` enum with `ALL`, `as_str` and `parse` (see the module docs). Extra
/// derives and attributes go before `enum`; each variant may carry doc comments.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The variant's name in the API, the store and the notices.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// Reads a name written by [`Self::as_str`].
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }

            /// The names, for an error that says what is accepted: "a, b or c".
            pub fn choices() -> String {
                let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                match names.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("{} or {last}", rest.join(", "))
                    }
                    _ => names.concat(),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use named_enum;
