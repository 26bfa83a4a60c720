// Imported first by the entry point, before any bundled library loads. The `debug` package
// (docker-modem and others) reads DEBUG once, as it loads, and then prints request options,
// X-Registry-Auth (the registry password, base64url) among them. A DEBUG=* meant for the
// workflow's own tools must not turn that on: the action's libraries never print debug output.
delete process.env.DEBUG;
