// Interop with clients no one in backflow wrote: Node.js's @grpc/grpc-js with
// @grpc/proto-loader (reading backflow's .proto files as any Node.js service would) and the
// grpc-js-reflection-client package, against a backflow-server this script starts on 127.0.0.1.
//
//   node interop.js --server BACKFLOW_SERVER --cli BACKFLOW_CLI --source SOURCE_DIR --work DIR
//
// It checks real values: backflow.v1 Evaluate of the staged circuit (the lecture notes' worked
// example), a LeNet-5 trained over backflow.v1 then called through the Open Inference Protocol
// (ModelMetadata, ModelInfer with typed and raw contents, equal to backflow.v1 Infer bitwise),
// and reflection v1 listing both services. Graphs are turned into JSON with
// `backflow graph convert` first: protobufjs reads no text format. Exits 0 when every check
// passes; the server is stopped (SIGTERM by PID) on every path.
'use strict';

const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { GrpcReflection } = require('grpc-js-reflection-client');

const TIMEOUT_MS = 120000;  // the whole test
const CALL_MS = 30000;  // each call's deadline

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const name of ['server', 'cli', 'source', 'work']) {
    if (!args[name]) throw new Error(`missing --${name}`);
  }
  return args;
}

// Starts backflow-server on 127.0.0.1:0 and resolves with its port once it logs it.
function startServer(binary, dataDir) {
  const child = spawn(
      binary, ['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--metrics-listen='],
      {stdio: ['ignore', 'pipe', 'pipe']});
  let log = '';
  const port = new Promise((resolve, reject) => {
    const onData = (chunk) => {
      log += chunk;
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
      if (match) resolve(Number(match[1]));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${log}`)));
  });
  return { child, port, log: () => log };
}

function stopServer(child) {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 20000);
    child.on('exit', (code) => { clearTimeout(force); resolve(code); });
    child.kill('SIGTERM');
  });
}

function call(client, method, request) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + CALL_MS);
    client[method](request, { deadline }, (error, response) => {
      if (error) reject(new Error(`${method}: ${error.code} ${error.details}`));
      else resolve(response);
    });
  });
}

// A JSON graph written by the backflow CLI from a text-format graph of models/.
function graphJson(args, name) {
  const out = path.join(args.work, name.replace('.pbtxt', '.json'));
  execFileSync(args.cli, ['graph', 'convert', path.join(args.source, 'models', name), out],
               { stdio: ['ignore', 'ignore', 'inherit'] });
  return JSON.parse(fs.readFileSync(out, 'utf8'));
}

function floats(buffer) {
  const copy = Buffer.from(buffer);
  return Array.from(new Float32Array(copy.buffer, copy.byteOffset, copy.length / 4));
}

function floatTensor(shape, values) {
  return { shape, dtype: 'FLOAT32', data: Buffer.from(new Float32Array(values).buffer) };
}

// Deterministic pseudo-random images in [0, 1) and labels 0..9 (a linear congruential generator).
function imageBatch(n, seed) {
  let state = seed >>> 0;
  const next = () => { state = (Math.imul(state, 1664525) + 1013904223) >>> 0; return state / 2 ** 32; };
  const images = Array.from({ length: n * 784 }, next);
  const labels = Array.from({ length: n }, () => Math.floor(next() * 10));
  return { images: floatTensor([n, 1, 28, 28], images), labels: floatTensor([n], labels) };
}

async function checkStagedCircuit(backflow, args) {
  const response = await call(backflow, 'Evaluate', {
    graph: graphJson(args, 'staged_circuit.pbtxt'), wrt: ['x', 'y'], dtype: 'FLOAT64',
  });
  const scalar = (tensor) => Buffer.from(tensor.data).readDoubleLE(0);
  // ../shared/seeds/GOLDEN.md: f(3, -4) and its gradient.
  assert.ok(Math.abs(scalar(response.outputs.f) - 1.5456448841) < 1e-9, 'f');
  assert.ok(Math.abs(scalar(response.gradients.x) - 2.0595697956) < 1e-9, 'df/dx');
  assert.ok(Math.abs(scalar(response.gradients.y) - 1.5922327515) < 1e-9, 'df/dy');
  console.log('backflow.v1 Evaluate: staged circuit f = 1.5456448841, gradients match');
}

async function checkLeNet(backflow, oip, args) {
  const model = await call(backflow, 'CreateModel', {
    name: 'lenet-node', graph: graphJson(args, 'lenet5.pbtxt'), seed: 3,
    optimizer: { kind: 'SGD', learningRate: 0.05 },
  });
  for (const seed of [1, 2]) {
    await call(backflow, 'TrainStep', { modelId: model.id, batch: imageBatch(8, seed) });
  }
  const { images } = imageBatch(4, 42);
  const expected = await call(backflow, 'Infer', { modelId: model.id, inputs: { images } });
  assert.equal(expected.step, '2');

  const metadata = await call(oip, 'ModelMetadata', { name: 'lenet-node' });
  assert.deepEqual(metadata.versions, ['1']);
  assert.deepEqual(metadata.inputs.map((t) => [t.name, t.datatype, t.shape.join(',')]),
                   [['images', 'FP32', '-1,1,28,28'], ['labels', 'FP32', '-1']]);
  assert.deepEqual(metadata.outputs.map((t) => [t.name, t.datatype, t.shape.join(',')]),
                   [['logits', 'FP32', '-1,10'], ['accuracy', 'FP32', '']]);

  const typed = await call(oip, 'ModelInfer', {
    modelName: 'lenet-node', id: 'node-1',
    inputs: [{ name: 'images', datatype: 'FP32', shape: [4, 1, 28, 28],
               contents: { fp32Contents: floats(images.data) } }],
  });
  assert.equal(typed.id, 'node-1');
  assert.equal(typed.parameters.step.int64Param, '2');
  assert.equal(typed.outputs.length, 1);
  assert.equal(typed.outputs[0].name, 'logits');
  assert.deepEqual(typed.outputs[0].shape, ['4', '10']);
  // protobufjs decodes float32 into doubles exactly: compare as float32 values.
  assert.deepEqual(typed.outputs[0].contents.fp32Contents.map(Math.fround),
                   floats(expected.outputs.logits.data));

  const raw = await call(oip, 'ModelInfer', {
    modelName: model.id,
    inputs: [{ name: 'images', datatype: 'FP32', shape: [4, 1, 28, 28] }],
    rawInputContents: [images.data],
  });
  assert.ok(Buffer.from(raw.rawOutputContents[0]).equals(Buffer.from(expected.outputs.logits.data)),
            'raw logits differ from backflow.v1 Infer');
  console.log('Open Inference Protocol: ModelMetadata and ModelInfer (typed and raw) on a trained ' +
              'LeNet-5 equal backflow.v1 Infer bitwise');
}

async function checkReflection(address) {
  const reflection = new GrpcReflection(address, grpc.credentials.createInsecure(), {}, 'v1');
  const services = await reflection.listServices();
  for (const name of ['backflow.v1.Backflow', 'inference.GRPCInferenceService']) {
    assert.ok(services.includes(name), `reflection v1 lists ${services.join(', ')}; no ${name}`);
  }
  const methods = (await reflection.listMethods('inference.GRPCInferenceService')).map((m) => m.name);
  assert.ok(methods.includes('ModelInfer'), `methods: ${methods.join(', ')}`);
  console.log(`reflection v1: ${services.length} services, ModelInfer among ` +
              'inference.GRPCInferenceService\'s methods');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  fs.mkdirSync(args.work, { recursive: true });
  const server = startServer(args.server, fs.mkdtempSync(path.join(args.work, 'data-')));
  const timer = setTimeout(() => {
    console.error(`interop: over ${TIMEOUT_MS} ms; server log:\n${server.log()}`);
    server.child.kill('SIGKILL');
    process.exit(1);
  }, TIMEOUT_MS);
  let failed = null;
  try {
    const address = `127.0.0.1:${await server.port}`;
    const packages = grpc.loadPackageDefinition(protoLoader.loadSync(
        ['backflow/v1/service.proto', 'inference/grpc_service.proto'],
        { includeDirs: [path.join(args.source, 'proto')], longs: String, enums: String,
          defaults: true, oneofs: true }));
    const credentials = grpc.credentials.createInsecure();
    const limits = { 'grpc.max_receive_message_length': 64 << 20 };
    const backflow = new packages.backflow.v1.Backflow(address, credentials, limits);
    const oip = new packages.inference.GRPCInferenceService(address, credentials, limits);
    await checkStagedCircuit(backflow, args);
    await checkLeNet(backflow, oip, args);
    await checkReflection(address);
    backflow.close();
    oip.close();
  } catch (error) {
    failed = error;
  }
  const code = await stopServer(server.child);
  clearTimeout(timer);
  if (failed) {
    console.error(`interop: FAILED: ${failed.stack}\nserver log:\n${server.log()}`);
    process.exit(1);
  }
  assert.equal(code, 0, `server exit code ${code}`);
  console.log('interop: all checks passed');
}

main();
