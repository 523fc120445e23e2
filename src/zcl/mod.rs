//! ZCL frames and the OTA Upgrade cluster: placeholder until the zcl module lands.
