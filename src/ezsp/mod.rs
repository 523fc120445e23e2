//! EZSP (UG100): placeholder until the ezsp module lands.
