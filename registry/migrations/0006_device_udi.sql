-- A device's Unique Device Identifier (the UDI of FDA 21 CFR 830 and EU MDR Article 27, as
-- printed on its label: a GS1, HIBCC or ICCBBA string), when known; '' when not. It is what a
-- certificate of sanitization names the device by, beside the manufacturer's serial.
ALTER TABLE devices ADD COLUMN udi TEXT NOT NULL DEFAULT '';
