//! ASH (UG101): placeholder until the ash module lands.
