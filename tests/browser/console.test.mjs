// The web console in a real browser (headless Debian chromium via playwright-core).
// Run by scripts/browser-test.sh, which starts the servers and the ffmpeg publisher and passes
// their ports in SB_* variables.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run scripts/browser-test.sh`);
  return value;
};
const API = env('SB_API');
const ROOM = env('SB_ROOM');
const HLS_PORT = env('SB_HLS_PORT');
const ARTIFACTS = env('SB_ARTIFACTS');
const JWT_API = process.env.SB_JWT_API;
const JWT_SECRET = process.env.SB_JWT_SECRET;
const KEY = `live/${ROOM}`;

mkdirSync(ARTIFACTS, { recursive: true });

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--autoplay-policy=no-user-gesture-required'],
  });
});

after(async () => {
  if (browser) await browser.close();
});

/** A page that records uncaught exceptions and CSP violations. */
async function openPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) {
      page.problems.push(`CSP: ${msg.text()}`);
    }
  });
  return page;
}

const videoState = (page) => page.evaluate(() => {
  const v = document.getElementById('video');
  const q = v.getVideoPlaybackQuality();
  return {
    width: v.videoWidth,
    height: v.videoHeight,
    time: v.currentTime,
    frames: q.totalVideoFrames,
    paused: v.paused,
    engine: window.switchboard.engine,
    errors: window.switchboard.errors.map((e) => e.message),
    warnings: window.switchboard.warnings.map((e) => e.message),
    latency: window.switchboard.latency,
    errorShown: !document.getElementById('player-error').hidden,
  };
});

/** Waits for frames, then checks that playback moves on at real-time speed for 6 s. */
async function assertPlays(page, engine, maxLatency) {
  await page.waitForFunction(() => {
    const v = document.getElementById('video');
    return v.videoWidth > 0 && v.currentTime > 0.5 && !v.paused;
  }, null, { timeout: 30000 }).catch(async (e) => {
    throw new Error(`${e.message}; player state: ${JSON.stringify(await videoState(page))}`);
  });
  const start = await videoState(page);
  await page.waitForTimeout(6000);
  const end = await videoState(page);
  const detail = JSON.stringify({ start, end });
  assert.equal(end.engine, engine, detail);
  assert.equal(end.width, 640, detail);
  assert.equal(end.height, 360, detail);
  assert.ok(end.time - start.time >= 4, `currentTime advanced ${end.time - start.time} s in 6 s: ${detail}`);
  assert.ok(end.frames > start.frames, `decoded frames did not grow: ${detail}`);
  assert.deepEqual(end.errors, [], detail);
  assert.equal(end.errorShown, false, detail);
  assert.ok(end.latency !== null && end.latency < maxLatency, `latency ${end.latency} s: ${detail}`);
  const shown = await page.textContent('#st-latency');
  assert.match(shown, /^\d+\.\d\d s$/);
  assert.deepEqual(page.problems, []);
}

test('the console lists the live stream with its codec, resolution and viewers', { timeout: 60000 }, async () => {
  const page = await openPage();
  await page.goto(`${API}/`);
  const row = `#streams tr[data-key="${KEY}"]`;
  await page.waitForSelector(row, { timeout: 15000 });
  // Codec and resolution come from the stream's first frames; the list refreshes every 2 s.
  await page.waitForFunction((sel) => {
    const tr = document.querySelector(sel);
    return tr && tr.querySelector('.res').textContent === '640×360';
  }, row, { timeout: 15000 });
  assert.match(await page.textContent(`${row} .codec`), /H\.?264/i);
  assert.match(await page.textContent(`${row} .name`), new RegExp(`live/${ROOM}`));
  assert.equal(await page.textContent('#api-state'), '1 live');

  // Opening the stream from the list plays it and the list then counts this viewer.
  await page.click(`${row} button[data-type="flv"]`);
  await assertPlays(page, 'mpegts.js', 5);
  await page.waitForFunction((sel) => {
    const tr = document.querySelector(sel);
    return tr && Number(tr.querySelector('.viewers').textContent) >= 1;
  }, row, { timeout: 10000 });
  assert.match(page.url(), new RegExp(`[?&]room=${ROOM}(&|$)`));
  await page.screenshot({ path: join(ARTIFACTS, 'console.png'), fullPage: true });
  await page.context().close();
});

test('plays over HTTP-FLV with mpegts.js from ?room=&type=flv', { timeout: 60000 }, async () => {
  const page = await openPage();
  await page.goto(`${API}/?room=${ROOM}&type=flv`);
  await assertPlays(page, 'mpegts.js', 5);
  // The URL panel shows this room's URLs on the right ports.
  assert.equal(await page.inputValue('#url-flv'), `http://127.0.0.1:${process.env.SB_FLV_PORT}/live/${ROOM}.flv`);
  assert.equal(await page.inputValue('#url-hls'), `http://127.0.0.1:${HLS_PORT}/live/${ROOM}.m3u8`);
  assert.equal(await page.inputValue('#url-rtmp'), `rtmp://127.0.0.1:${process.env.SB_RTMP_PORT}/live/${ROOM}`);
  assert.equal(await page.inputValue('#url-obs'), `rtmp://127.0.0.1:${process.env.SB_RTMP_PORT}/live`);
  await page.context().close();
});

test('plays over HLS with hls.js from ?room=&type=hls', { timeout: 90000 }, async () => {
  // The playlist needs a few segments first; give the segmenter time instead of racing it.
  const playlist = `http://127.0.0.1:${HLS_PORT}/live/${ROOM}.m3u8`;
  const deadline = Date.now() + 30000;
  let last = '';
  for (;;) {
    try {
      // A master playlist names the media playlist on its first URI line.
      let url = playlist;
      let text = '';
      for (let hops = 0; hops < 2; hops++) {
        const res = await fetch(url);
        last = `${url}: HTTP ${res.status}`;
        text = res.ok ? await res.text() : '';
        const variant = text.includes('#EXT-X-STREAM-INF') && text.split('\n').find((l) => l && !l.startsWith('#'));
        if (!variant) break;
        url = new URL(variant.trim(), url).toString();
      }
      if (text.includes('#EXTINF')) break;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > deadline) assert.fail(`no HLS playlist at ${playlist} (${last})`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const page = await openPage();
  await page.goto(`${API}/?room=${ROOM}&type=hls`);
  await assertPlays(page, 'hls.js', 20);
  await page.context().close();
});

test('the protocol switch changes player and a phone-sized page stays usable', { timeout: 60000 }, async () => {
  const page = await openPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await page.goto(`${API}/?room=${ROOM}&type=hls`);
  await page.click('.switch .seg[data-type="flv"]');
  await assertPlays(page, 'mpegts.js', 5);
  assert.match(page.url(), /type=flv/);
  // Nothing wider than the screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than a phone screen`);
  await page.screenshot({ path: join(ARTIFACTS, 'console-phone.png'), fullPage: true });
  await page.context().close();
});

test('the stream key button fetches the room key', { timeout: 30000 }, async () => {
  const page = await openPage();
  await page.goto(`${API}/?room=${ROOM}&type=flv`);
  await page.click('#key-button');
  await page.waitForFunction(() => document.getElementById('url-key').value.length > 0, null, { timeout: 10000 });
  const key = await page.inputValue('#url-key');
  const res = await fetch(`${API}/control/get?room=${ROOM}`);
  assert.equal(key, (await res.json()).data);
  assert.equal(await page.getAttribute('#url-key', 'type'), 'password');
  await page.context().close();
});

function hs256(secret, claims) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

test('with JWT on, the console asks for a token and keeps it', { timeout: 60000 }, async (t) => {
  if (!JWT_API || !JWT_SECRET) return t.skip('no JWT server started');
  const probe = await fetch(`${JWT_API}/stat/livestat`);
  if (probe.status !== 403) return t.skip(`this build does not enforce JWT yet (livestat answered ${probe.status})`);

  const page = await openPage();
  await page.goto(`${JWT_API}/`);
  await page.waitForSelector('#token-dialog[open]', { timeout: 10000 });

  // A token signed with another secret is refused and the console asks again.
  await page.fill('#token-input', hs256('wrong-secret', { sub: 'tester' }));
  await page.click('#token-save');
  await page.waitForSelector('#token-dialog[open]', { timeout: 10000 });
  await page.waitForFunction(() => /refused/.test(document.getElementById('token-reason').textContent));

  const token = hs256(JWT_SECRET, { sub: 'tester', exp: Math.floor(Date.now() / 1000) + 3600 });
  await page.fill('#token-input', token);
  await page.click('#token-save');
  await page.waitForFunction(() => document.getElementById('api-state').textContent === '0 live', null, { timeout: 10000 });
  assert.equal(await page.isVisible('#token-dialog'), false);

  // Kept across reloads.
  await page.reload();
  await page.waitForFunction(() => document.getElementById('api-state').textContent === '0 live', null, { timeout: 10000 });
  assert.equal(await page.isVisible('#token-dialog'), false);
  assert.equal(await page.evaluate(() => localStorage.getItem('switchboard.jwt')), token);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
