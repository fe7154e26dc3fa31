"""The propagation watch as pure logic: serials, the client table, counts and decisions."""
