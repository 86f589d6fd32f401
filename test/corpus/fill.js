// Allocates about 600 MiB: 300 MiB of typed arrays (Float64Array and Uint32Array, backed by
// ArrayBuffers outside the V8 heap) and 300 MiB of small objects and strings on the V8 heap,
// then re-reads everything and prints checksums. Exits 1 at the first wrong value.
'use strict';
const MiB = 1 << 20;

function mix(x) {
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  return (x ^ (x >>> 16)) >>> 0;
}

const typed = [];
for (let i = 0; i < 150; i++) {
  const f = new Float64Array(MiB / 8);
  for (let j = 0; j < f.length; j++) f[j] = mix(i * 131072 + j) / 7;
  const u = new Uint32Array(MiB / 4);
  for (let j = 0; j < u.length; j++) u[j] = mix(i * 262144 + j + 1);
  typed.push(f, u);
}

const objects = [];
for (let i = 0; i < 2500000; i++) {
  objects.push({id: i, key: 'k' + mix(i).toString(36), value: mix(i + 7), next: null});
  if (i > 0 && i % 3 === 0) objects[i - 1].next = objects[i];
}

function fail(what) {
  console.log('BAD ' + what);
  process.exit(1);
}

for (let pass = 0; pass < 2; pass++) {
  let sum = 0;
  for (let i = 0; i < 150; i++) {
    const f = typed[2 * i], u = typed[2 * i + 1];
    for (let j = 0; j < f.length; j++) {
      if (f[j] !== mix(i * 131072 + j) / 7) fail('float ' + i + ' ' + j);
    }
    for (let j = 0; j < u.length; j++) {
      if (u[j] !== mix(i * 262144 + j + 1)) fail('uint ' + i + ' ' + j);
      sum = (sum + u[j]) % 4294967291;
    }
  }
  let osum = 0, links = 0;
  for (let i = 0; i < objects.length; i++) {
    const o = objects[i];
    if (o.id !== i || o.value !== mix(i + 7) || o.key !== 'k' + mix(i).toString(36)) {
      fail('object ' + i);
    }
    if (o.next !== null) links++;
    osum = (osum + o.value + o.key.length) % 4294967291;
  }
  console.log('pass ' + pass + ' typed ' + sum + ' objects ' + osum + ' links ' + links);
}
