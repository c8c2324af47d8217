#!/usr/bin/env node
// A client written with the seed's API: the 'session' event keeps the session,
// tls.connect({session}) offers it again, isSessionReused() tells what happened.
//   node_client.js --port P [--host H] [--sni NAME] [--tls 1.2|1.3] [--session-in F] [--session-out F]
//                  [--ca FILE] [--alpn h2,http/1.1]
// Prints one JSON line: {"reused":bool,"protocol":"TLSv1.3","body":{...server JSON...},"session_saved":bool}
'use strict';
const tls = require('tls');
const fs = require('fs');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];

const version = args.tls === '1.2' ? 'TLSv1.2' : 'TLSv1.3';
const opts = {
  host: args.host || '127.0.0.1',
  port: Number(args.port),
  servername: args.sni || undefined,
  minVersion: version,
  maxVersion: version,
  rejectUnauthorized: !!args.ca,
  ca: args.ca ? fs.readFileSync(args.ca) : undefined,
  ALPNProtocols: args.alpn ? args.alpn.split(',') : undefined,
};
if (args['session-in']) opts.session = fs.readFileSync(args['session-in']);

let session = null;
let body = '';
let reused = null;
let protocol = null;
const timer = setTimeout(() => { console.error('timeout'); process.exit(3); }, 10000);
const sock = tls.connect(opts, () => {
  reused = sock.isSessionReused();
  protocol = sock.getProtocol();
  sock.write('GET / HTTP/1.1\r\nHost: ' + (args.sni || 'localhost') + '\r\nConnection: close\r\n\r\n');
});
sock.on('session', (s) => { session = s; });
sock.on('data', (d) => { body += d.toString(); });
sock.on('error', (e) => { console.error('error: ' + e.message); process.exit(2); });
sock.on('close', () => {
  clearTimeout(timer);
  if (session && args['session-out']) fs.writeFileSync(args['session-out'], session);
  const line = body.split('\n').find((l) => l.startsWith('{'));
  console.log(JSON.stringify({
    reused,
    protocol,
    body: line ? JSON.parse(line) : null,
    session_saved: !!session,
  }));
});
