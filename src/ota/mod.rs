//! The OTA upgrade file (ZCL8 §11.4): placeholder until the ota module lands.
