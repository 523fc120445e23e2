//! The `wire_enum!` macro: rustls-style newtypes for wire enums (named constants, unknown
//! values kept, `Debug` in hex with the name when known).

/// Declares `pub struct Name(pub repr)` with named constants, `name()`, a hex `Debug` and
/// conversions to and from the raw integer. Values must be distinct.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident($repr:ty) {
            $($(#[$const_meta:meta])* $constant:ident = $value:expr),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $repr);

        impl $name {
            $(
                $(#[$const_meta])*
                #[doc = concat!("`", stringify!($constant), "`")]
                pub const $constant: Self = Self($value);
            )*

            /// The specification's name for this value, or `None` when it is not one we know.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(Self::$constant => Some(stringify!($constant)),)*
                    _ => None,
                }
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let width = ::core::mem::size_of::<$repr>() * 2;
                match self.name() {
                    Some(known) => write!(
                        f,
                        concat!(stringify!($name), "(0x{:0width$X} {})"),
                        self.0,
                        known,
                        width = width
                    ),
                    None => write!(
                        f,
                        concat!(stringify!($name), "(0x{:0width$X})"),
                        self.0,
                        width = width
                    ),
                }
            }
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                Self(value)
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

pub(crate) use wire_enum;
