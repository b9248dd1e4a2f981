"""Hardware abstraction layer: CAN buses and recordings in, typed VSS signals out, actuator requests back down."""
