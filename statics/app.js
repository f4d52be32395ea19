// Switchboard web console: live stream list, player (HTTP-FLV via mpegts.js, HLS via hls.js or
// the browser's own HLS), copyable URLs and stream keys. No framework; served from statics/.
'use strict';

(() => {
  const POLL_MS = 2000;
  const HIDDEN_POLL_MS = 10000;
  const TICK_MS = 500;
  const TOKEN_KEY = 'switchboard.jwt';
  const PROTOCOL_KEY = 'switchboard.protocol';
  const DEFAULT_CONFIG = {
    rtmp_port: 1935, httpflv_port: 7001, hls_port: 7002, jwt: false,
    apps: [{ name: 'live', live: true, flv: true, hls: true }],
  };
  // FLV: mpegts.js slows down/catches up past liveSyncMaxLatency and jumps past
  // liveBufferLatencyMaxLatency, so the two are staggered.
  const FLV_CONFIG = {
    enableWorker: false,
    enableStashBuffer: false,
    lazyLoad: false,
    liveBufferLatencyChasing: true,
    liveBufferLatencyMaxLatency: 3.0,
    liveBufferLatencyMinRemain: 0.5,
    liveSync: true,
    liveSyncMaxLatency: 1.2,
    liveSyncTargetLatency: 0.8,
    liveSyncPlaybackRate: 1.2,
    autoCleanupSourceBuffer: true,
    autoCleanupMaxBackwardDuration: 30,
    autoCleanupMinBackwardDuration: 15,
  };
  // HLS: start two segments from the live edge, jump back if five behind; playback-rate
  // nudging in between is done by nudgeHls() so one controller owns video.playbackRate.
  const HLS_CONFIG = {
    lowLatencyMode: true,
    liveSyncDurationCount: 2,
    liveMaxLatencyDurationCount: 5,
    maxLiveSyncPlaybackRate: 1,
    backBufferLength: 30,
    enableWorker: true,
  };
  const EMPTY_TEXT = 'No live streams yet. Publish one with OBS or ffmpeg using the URLs below.';
  const RETRY_MIN_MS = 2000;
  const RETRY_MAX_MS = 10000;

  const $ = (id) => document.getElementById(id);
  const video = $('video');

  const state = {
    config: DEFAULT_CONFIG,
    app: 'live',
    room: '',
    current: null, // { app, room, type } being played
    player: null, // { engine, destroy(), latencyTarget(), ... }
    retryTimer: 0,
    retryDelay: RETRY_MIN_MS,
    pollTimer: 0,
    pollGeneration: 0,
    tokenWanted: false,
    rows: new Map(), // stream key → <tr>
    lastStreams: [],
  };

  // Read by the browser test and handy from the devtools console.
  const debug = {
    errors: [], // fatal player errors shown to the user
    warnings: [], // recovered/non-fatal player events
    engine: null,
    latency: null,
    state,
  };
  window.switchboard = debug;

  // ---------------------------------------------------------------- storage
  function load(key) {
    try { return localStorage.getItem(key) || ''; } catch (_) { return ''; }
  }
  function store(key, value) {
    try {
      if (value) localStorage.setItem(key, value); else localStorage.removeItem(key);
    } catch (_) { /* private mode: keep it for this page only */ }
  }
  let sessionToken = load(TOKEN_KEY);

  // ---------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path) {
    const headers = { Accept: 'application/json' };
    if (sessionToken) headers.Authorization = 'Bearer ' + sessionToken;
    let res;
    try {
      res = await fetch(path, { headers, cache: 'no-store' });
    } catch (_) {
      throw new ApiError(0, 'server unreachable');
    }
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    const message = body && typeof body.data === 'string' ? body.data : res.statusText;
    if (res.status === 401 || res.status === 403) {
      askForToken(sessionToken ? `The token was refused: ${message}` : null);
      throw new ApiError(res.status, message || 'token required');
    }
    if (!res.ok) throw new ApiError(res.status, message || `HTTP ${res.status}`);
    return body ? body.data : null;
  }

  async function loadConfig() {
    try {
      const res = await fetch('/console-config.json', { cache: 'no-store' });
      if (res.ok) {
        const cfg = await res.json();
        state.config = Object.assign({}, DEFAULT_CONFIG, cfg);
        if (!Array.isArray(state.config.apps) || !state.config.apps.length) {
          state.config.apps = DEFAULT_CONFIG.apps;
        }
      }
    } catch (_) { /* older server: defaults */ }
    const select = $('app-select');
    select.textContent = '';
    for (const app of state.config.apps.filter((a) => a.live !== false)) {
      const option = document.createElement('option');
      option.value = option.textContent = app.name;
      select.append(option);
    }
    if (state.config.jwt) $('token-button').hidden = false;
  }

  function appInfo(name) {
    return state.config.apps.find((a) => a.name === name) || { name, flv: true, hls: true };
  }

  // ---------------------------------------------------------------- URLs
  function hostPort(port, defaultPort) {
    const host = location.hostname || '127.0.0.1';
    return port && port !== defaultPort ? `${host}:${port}` : host;
  }
  const httpScheme = () => (location.protocol === 'https:' ? 'https:' : 'http:');
  const seg = (s) => encodeURIComponent(s);

  function urlsFor(app, room) {
    const c = state.config;
    const rtmpBase = `rtmp://${hostPort(c.rtmp_port, 1935)}/${seg(app)}`;
    const page = new URL('/', location.href);
    page.search = new URLSearchParams({ app, room, type: preferredType(app) }).toString();
    return {
      obs: rtmpBase,
      rtmp: room ? `${rtmpBase}/${seg(room)}` : '',
      flv: room && c.httpflv_port ? `${httpScheme()}//${hostPort(c.httpflv_port, 80)}/${seg(app)}/${seg(room)}.flv` : '',
      hls: room && c.hls_port ? `${httpScheme()}//${hostPort(c.hls_port, 80)}/${seg(app)}/${seg(room)}.m3u8` : '',
      page: room ? page.toString() : '',
    };
  }

  function renderUrls() {
    const urls = urlsFor(state.app, state.room);
    $('url-obs').value = urls.obs;
    $('url-rtmp').value = urls.rtmp;
    $('url-flv').value = urls.flv || (state.room ? 'HTTP-FLV is disabled on this server' : '');
    $('url-hls').value = urls.hls || (state.room ? 'HLS is disabled on this server' : '');
    $('url-page').value = urls.page;
    $('key-button').disabled = !state.room;
    if ($('room-input').value.trim() !== state.room) $('room-input').value = state.room;
    $('app-select').value = state.app;
  }

  function setRoom(app, room) {
    if (app !== state.app || room !== state.room) {
      $('url-key').value = '';
      $('url-key').type = 'password';
      $('key-show').hidden = true;
    }
    state.app = app;
    state.room = room;
    renderUrls();
  }

  async function copyField(id, button) {
    const input = $(id);
    if (!input.value) return;
    let ok = false;
    try {
      await navigator.clipboard.writeText(input.value);
      ok = true;
    } catch (_) {
      // Plain-http pages on a LAN address have no async clipboard.
      const type = input.type;
      input.type = 'text';
      input.select();
      try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
      input.type = type;
      input.setSelectionRange(0, 0);
    }
    const label = button.textContent;
    button.textContent = ok ? 'Copied' : 'Press Ctrl+C';
    button.classList.toggle('copied', ok);
    if (!ok) { input.type = 'text'; input.select(); }
    setTimeout(() => { button.textContent = label; button.classList.remove('copied'); }, 1500);
  }

  async function fetchKey() {
    if (!state.room) return;
    const button = $('key-button');
    button.disabled = true;
    try {
      const key = await api(`/control/get?room=${encodeURIComponent(state.room)}`);
      $('url-key').value = String(key);
      $('key-show').hidden = false;
    } catch (e) {
      $('url-key').value = '';
      $('url-key').placeholder = `could not get the key: ${e.message}`;
    } finally {
      button.disabled = !state.room;
    }
  }

  // ---------------------------------------------------------------- stream list
  function fmtBitrate(kbps) {
    if (!Number.isFinite(kbps) || kbps <= 0) return '–';
    return kbps >= 1000 ? `${(kbps / 1000).toFixed(2)} Mbit/s` : `${Math.round(kbps)} kbit/s`;
  }

  function fmtDuration(secs) {
    if (!Number.isFinite(secs) || secs < 0) return '–';
    secs = Math.floor(secs);
    const h = Math.floor(secs / 3600);
    const m = Math.floor((secs % 3600) / 60);
    const s = secs % 60;
    const two = (n) => String(n).padStart(2, '0');
    return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
  }

  function startedAt(value) {
    if (typeof value === 'number') return value > 1e12 ? value : value * 1000;
    if (typeof value === 'string' && value) {
      const t = Date.parse(value);
      return Number.isNaN(t) ? null : t;
    }
    return null;
  }

  const CODEC_NAMES = {
    h264: 'H.264', avc: 'H.264', avc1: 'H.264', hevc: 'H.265', h265: 'H.265', hvc1: 'H.265',
    av1: 'AV1', vp9: 'VP9', aac: 'AAC', mp3: 'MP3', opus: 'Opus', speex: 'Speex',
  };
  function codecName(c) {
    if (!c) return '–';
    const s = String(c);
    return CODEC_NAMES[s.toLowerCase()] || s.toUpperCase();
  }

  function toStreams(data) {
    const publishers = (data && data.publishers) || [];
    const players = (data && data.players) || [];
    return publishers.map((p) => {
      const key = String(p.key || '');
      const slash = key.indexOf('/');
      const watchers = players.filter((v) => v.key === key && v.protocol !== 'relay');
      const byProtocol = {};
      for (const v of watchers) byProtocol[v.protocol || 'rtmp'] = (byProtocol[v.protocol || 'rtmp'] || 0) + 1;
      return {
        key,
        app: slash > 0 ? key.slice(0, slash) : 'live',
        room: slash > 0 ? key.slice(slash + 1) : key,
        codec: codecName(p.video_codec),
        audio: p.audio_codec ? codecName(p.audio_codec) : '',
        width: p.width || 0,
        height: p.height || 0,
        fps: Number(p.fps) || 0,
        kbps: (Number(p.video_speed) || 0) + (Number(p.audio_speed) || 0),
        viewers: watchers.length,
        byProtocol,
        since: startedAt(p.connected_at),
      };
    });
  }

  function cell(tr, label, cls) {
    const td = document.createElement('td');
    td.dataset.label = label;
    if (cls) td.className = cls;
    tr.append(td);
    return td;
  }

  function buildRow(s) {
    const tr = document.createElement('tr');
    tr.dataset.key = s.key;
    const name = cell(tr, 'Stream', 'name');
    const app = document.createElement('span');
    app.className = 'app';
    const room = document.createElement('span');
    name.append(app, room);
    for (const [label, cls] of [['Codec', 'codec'], ['Resolution', 'res'], ['FPS', 'fps'], ['Bitrate', 'rate'], ['Viewers', 'viewers'], ['Live for', 'uptime']]) {
      cell(tr, label, cls);
    }
    const actions = cell(tr, '', 'actions');
    for (const type of ['flv', 'hls']) {
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.type = type;
      b.textContent = type === 'flv' ? '▶ FLV' : '▶ HLS';
      b.addEventListener('click', (ev) => {
        ev.stopPropagation();
        play(tr.dataset.app, tr.dataset.room, type);
      });
      actions.append(b);
    }
    tr.addEventListener('click', () => play(tr.dataset.app, tr.dataset.room, preferredType(tr.dataset.app)));
    return tr;
  }

  function updateRow(tr, s) {
    tr.dataset.app = s.app;
    tr.dataset.room = s.room;
    const [app, room] = tr.querySelector('.name').children;
    app.textContent = `${s.app}/`;
    room.textContent = s.room;
    const q = (cls) => tr.querySelector(`.${cls}`);
    q('codec').textContent = s.audio ? `${s.codec} · ${s.audio}` : s.codec;
    q('res').textContent = s.width && s.height ? `${s.width}×${s.height}` : '–';
    q('fps').textContent = s.fps ? String(Math.round(s.fps * 10) / 10) : '–';
    q('rate').textContent = fmtBitrate(s.kbps);
    q('viewers').textContent = String(s.viewers);
    q('viewers').title = Object.entries(s.byProtocol).map(([k, n]) => `${k}: ${n}`).join(', ') || 'no viewers';
    q('uptime').textContent = s.since ? fmtDuration((Date.now() - s.since) / 1000) : '–';
    const info = appInfo(s.app);
    for (const b of tr.querySelectorAll('.actions button')) {
      b.disabled = !(b.dataset.type === 'flv' ? info.flv && state.config.httpflv_port : info.hls && state.config.hls_port);
    }
    const cur = state.current;
    tr.classList.toggle('playing', !!cur && cur.app === s.app && cur.room === s.room);
  }

  function renderStreams(streams) {
    state.lastStreams = streams;
    const tbody = document.querySelector('#streams tbody');
    const seen = new Set();
    streams.sort((a, b) => a.key.localeCompare(b.key));
    for (const s of streams) {
      seen.add(s.key);
      let tr = state.rows.get(s.key);
      if (!tr) {
        tr = buildRow(s);
        state.rows.set(s.key, tr);
      }
      updateRow(tr, s);
      tbody.append(tr); // keeps sorted order; moving an existing node is cheap
    }
    for (const [key, tr] of state.rows) {
      if (!seen.has(key)) { tr.remove(); state.rows.delete(key); }
    }
    $('streams-empty').hidden = streams.length > 0;
    $('streams').hidden = streams.length === 0;
  }

  function setApiState(text, cls) {
    const el = $('api-state');
    el.textContent = text;
    el.className = `pill ${cls || ''}`;
  }

  async function poll() {
    clearTimeout(state.pollTimer);
    // Only the newest call renders and schedules the next one, so a poll started while
    // another is in flight (tab shown again, token saved) never doubles the loop.
    const generation = ++state.pollGeneration;
    if (state.tokenWanted) return; // resumes when a token is saved
    try {
      const data = await api('/stat/livestat');
      if (generation !== state.pollGeneration) return;
      const streams = toStreams(data);
      $('streams-empty').textContent = EMPTY_TEXT;
      renderStreams(streams);
      $('streams-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
      setApiState(`${streams.length} live`, 'ok');
    } catch (e) {
      if (generation !== state.pollGeneration) return;
      const tokenProblem = e.status === 403 || e.status === 401;
      setApiState(tokenProblem ? 'token needed' : `API: ${e.message}`, 'bad');
      if (!state.lastStreams.length) {
        $('streams-empty').textContent = tokenProblem
          ? 'The stream list needs an API token.'
          : `Could not load the stream list (${e.message}).`;
      }
    }
    if (!state.tokenWanted) {
      state.pollTimer = setTimeout(poll, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
    }
  }

  // ---------------------------------------------------------------- token
  function askForToken(reason) {
    state.tokenWanted = true;
    $('token-button').hidden = false;
    setApiState('token needed', 'bad');
    if (!state.lastStreams.length) $('streams-empty').textContent = 'The stream list needs an API token.';
    $('token-reason').textContent = reason ||
      'This server protects its API with a JWT. Paste a token to list streams and fetch keys. Playback works without one.';
    const dialog = $('token-dialog');
    $('token-input').value = '';
    if (!dialog.open) {
      if (typeof dialog.showModal === 'function') dialog.showModal(); else dialog.setAttribute('open', '');
    }
    $('token-input').focus();
  }

  function closeTokenDialog() {
    const dialog = $('token-dialog');
    if (dialog.open) dialog.close();
  }

  function saveToken(token) {
    sessionToken = token.trim();
    store(TOKEN_KEY, sessionToken);
    state.tokenWanted = false;
    closeTokenDialog();
    poll();
  }

  // ---------------------------------------------------------------- player
  function preferredType(app) {
    const info = appInfo(app);
    const flvOk = info.flv !== false && !!state.config.httpflv_port;
    const hlsOk = info.hls !== false && !!state.config.hls_port;
    const saved = load(PROTOCOL_KEY);
    if (saved === 'hls' && hlsOk) return 'hls';
    if (saved === 'flv' && flvOk) return 'flv';
    return flvOk ? 'flv' : 'hls';
  }

  function overlay(text) {
    const el = $('player-overlay');
    el.textContent = text || '';
    el.hidden = !text;
  }

  function showError(text) {
    const el = $('player-error');
    el.textContent = text || '';
    el.hidden = !text;
  }

  function playerError(message) {
    debug.errors.push({ at: Date.now(), engine: debug.engine, message });
    showError(message);
  }

  function playerWarning(message) {
    debug.warnings.push({ at: Date.now(), engine: debug.engine, message });
  }

  function stopPlayer() {
    clearTimeout(state.retryTimer);
    state.retryTimer = 0;
    if (state.player) {
      try { state.player.destroy(); } catch (_) { /* already torn down */ }
      state.player = null;
    }
    video.removeAttribute('src');
    try { video.load(); } catch (_) { /* nothing loaded */ }
    video.playbackRate = 1;
    debug.engine = null;
  }

  // A live stream that is offline or just ended: wait and try again, backing off.
  function retryLater(why) {
    const cur = state.current;
    if (!cur) return;
    if (state.player) {
      try { state.player.destroy(); } catch (_) { /* already torn down */ }
      state.player = null;
    }
    const delay = state.retryDelay;
    state.retryDelay = Math.min(state.retryDelay * 2, RETRY_MAX_MS);
    overlay(`${why} Retrying in ${Math.round(delay / 1000)} s…`);
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(() => {
      if (state.current === cur) startPlayer(cur);
    }, delay);
  }

  // The page starts muted (browsers only autoplay muted media without a click); a viewer who
  // unmuted keeps sound across reconnects unless the browser refuses, then it is muted again.
  function tryAutoplay() {
    const attempt = () => Promise.resolve(video.play());
    attempt().catch((e) => {
      if (!e || e.name !== 'NotAllowedError') return;
      if (video.muted) return overlay('Press play to start');
      video.muted = true;
      attempt().catch(() => overlay('Press play to start'));
    });
  }

  function startFlv(url) {
    const mpegts = window.mpegts;
    if (!mpegts) return playerError('mpegts.js is not installed on this server (run scripts/build-web.sh).');
    const features = mpegts.getFeatureList();
    if (!features.mseLivePlayback) {
      return playerError('This browser cannot play HTTP-FLV (no Media Source Extensions); switch to HLS.');
    }
    // mpegts.js logs every segment at info level; keep the devtools console readable.
    mpegts.LoggingControl.enableVerbose = false;
    mpegts.LoggingControl.enableDebug = false;
    mpegts.LoggingControl.enableInfo = false;
    const player = mpegts.createPlayer({ type: 'flv', isLive: true, url, cors: true }, FLV_CONFIG);
    const E = mpegts.Events;
    player.on(E.ERROR, (type, detail, info) => {
      const text = `${type}: ${detail}${info && info.msg ? ` (${info.msg})` : ''}`;
      if (type === mpegts.ErrorTypes.NETWORK_ERROR) {
        // 404 = not live (yet); an early EOF = the publisher left.
        playerWarning(text);
        retryLater(detail === 'HttpStatusCodeInvalid' ? 'Stream is offline.' : 'Connection lost.');
      } else {
        playerError(`Playback failed: ${text}`);
        retryLater('Playback failed.');
      }
    });
    player.on(E.LOADING_COMPLETE, () => {
      playerWarning('stream ended');
      retryLater('Stream ended.');
    });
    player.on(E.MEDIA_INFO, () => { state.retryDelay = RETRY_MIN_MS; });
    player.attachMediaElement(video);
    player.load();
    tryAutoplay();
    state.player = {
      engine: 'mpegts.js',
      destroy() {
        player.pause();
        player.unload();
        player.detachMediaElement();
        player.destroy();
      },
      // mpegts.js chases FLV latency itself (see FLV_CONFIG).
      nudge() {},
      target: () => FLV_CONFIG.liveSyncTargetLatency,
    };
  }

  function segmentSeconds(hls) {
    const level = hls && hls.levels && hls.levels[hls.currentLevel >= 0 ? hls.currentLevel : 0];
    const td = level && level.details && level.details.targetduration;
    return Number.isFinite(td) && td > 0 ? td : 2;
  }

  // Speeds playback up a little while the buffer ahead grows past the target, so a stall or
  // a backgrounded tab does not leave the viewer behind the live edge for good.
  function nudgeRate(latency, target, slack) {
    if (!Number.isFinite(latency) || video.paused) return;
    let rate = video.playbackRate;
    if (latency > target + 2 * slack) rate = 1.25;
    else if (latency > target + slack) rate = 1.1;
    else if (latency <= target + slack / 4) rate = 1;
    if (rate !== video.playbackRate) video.playbackRate = rate;
  }

  function startHls(url) {
    const Hls = window.Hls;
    if (Hls && Hls.isSupported()) {
      const hls = new Hls(HLS_CONFIG);
      let mediaRecoveries = 0;
      hls.on(Hls.Events.ERROR, (_ev, data) => {
        const text = `${data.type}: ${data.details}`;
        if (!data.fatal) return playerWarning(text);
        if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
          playerWarning(text);
          const status = data.response && data.response.code;
          retryLater(status === 404 ? 'Stream is offline.' : 'Connection lost.');
        } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 2) {
          mediaRecoveries += 1;
          playerWarning(`${text} (recovering)`);
          hls.recoverMediaError();
        } else {
          playerError(`Playback failed: ${text}`);
          retryLater('Playback failed.');
        }
      });
      hls.on(Hls.Events.MANIFEST_PARSED, () => { state.retryDelay = RETRY_MIN_MS; tryAutoplay(); });
      hls.loadSource(url);
      hls.attachMedia(video);
      state.player = {
        engine: 'hls.js',
        destroy() { hls.destroy(); },
        target: () => hls.targetLatency || HLS_CONFIG.liveSyncDurationCount * segmentSeconds(hls),
        nudge(latency) { nudgeRate(latency, this.target(), segmentSeconds(hls)); },
      };
      return;
    }
    if (video.canPlayType('application/vnd.apple.mpegurl')) {
      // Safari: native HLS, no MSE needed.
      const onError = () => {
        playerWarning(`native HLS error ${video.error ? video.error.code : ''}`);
        retryLater('Stream is offline.');
      };
      video.addEventListener('error', onError);
      video.src = url;
      tryAutoplay();
      state.player = {
        engine: 'native HLS',
        destroy() { video.removeEventListener('error', onError); },
        target: () => 3 * 2,
        nudge(latency) { nudgeRate(latency, this.target(), 2); },
      };
      return;
    }
    playerError('This browser cannot play HLS.');
  }

  function startPlayer(cur) {
    stopPlayer();
    showError('');
    overlay('Connecting…');
    const urls = urlsFor(cur.app, cur.room);
    const url = cur.type === 'flv' ? urls.flv : urls.hls;
    if (!url) {
      playerError(`${cur.type === 'flv' ? 'HTTP-FLV' : 'HLS'} is disabled on this server.`);
      overlay('');
      return;
    }
    if (cur.type === 'flv') startFlv(url); else startHls(url);
    debug.engine = state.player ? state.player.engine : null;
    $('st-engine').textContent = debug.engine || '–';
  }

  function play(app, room, type) {
    room = room.trim();
    if (!room) return;
    app = app || state.app || 'live';
    type = type === 'hls' ? 'hls' : 'flv';
    store(PROTOCOL_KEY, type);
    setRoom(app, room);
    state.current = { app, room, type };
    state.retryDelay = RETRY_MIN_MS;
    debug.errors.length = 0;
    debug.warnings.length = 0;
    $('player-title').textContent = `${app}/${room}`;
    document.title = `${room} · Switchboard`;
    for (const b of document.querySelectorAll('.switch .seg')) {
      b.setAttribute('aria-pressed', String(b.dataset.type === type));
    }
    const params = new URLSearchParams(location.search);
    params.set('room', room);
    params.set('type', type);
    if (app !== 'live') params.set('app', app); else params.delete('app');
    history.replaceState(null, '', `${location.pathname}?${params}`);
    renderUrls();
    renderStreams(state.lastStreams);
    startPlayer(state.current);
  }

  // Latency and frame counters, plus the HLS rate nudge.
  function tick() {
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    const b = video.buffered;
    const latency = b.length ? b.end(b.length - 1) - video.currentTime : NaN;
    debug.latency = Number.isFinite(latency) ? latency : null;
    const lat = $('st-latency');
    if (state.player && Number.isFinite(latency)) {
      lat.textContent = `${latency.toFixed(2)} s`;
      const target = state.player.target();
      lat.className = latency <= target + 1 ? 'good' : 'high';
      state.player.nudge(latency);
    } else {
      lat.textContent = '–';
      lat.className = '';
    }
    $('st-resolution').textContent = video.videoWidth ? `${video.videoWidth}×${video.videoHeight}` : '–';
    $('st-frames').textContent = state.player && q ? `${q.totalVideoFrames} (${q.droppedVideoFrames} dropped)` : '–';
    $('st-rate').textContent = state.player ? `${video.playbackRate.toFixed(2)}×` : '–';
  }

  // ---------------------------------------------------------------- wiring
  function wire() {
    for (const b of document.querySelectorAll('.switch .seg')) {
      b.addEventListener('click', () => {
        const room = state.current ? state.current.room : state.room;
        const app = state.current ? state.current.app : state.app;
        if (room) play(app, room, b.dataset.type);
        else store(PROTOCOL_KEY, b.dataset.type);
      });
    }
    $('room-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      play($('app-select').value, $('room-input').value, state.current ? state.current.type : preferredType($('app-select').value));
    });
    $('room-input').addEventListener('input', () => setRoom($('app-select').value, $('room-input').value.trim()));
    $('app-select').addEventListener('change', () => setRoom($('app-select').value, $('room-input').value.trim()));
    for (const b of document.querySelectorAll('button.copy')) {
      b.addEventListener('click', () => copyField(b.dataset.copy, b));
    }
    $('key-button').addEventListener('click', fetchKey);
    $('key-show').addEventListener('click', () => {
      const input = $('url-key');
      input.type = input.type === 'password' ? 'text' : 'password';
      $('key-show').textContent = input.type === 'password' ? 'Show' : 'Hide';
    });
    $('token-button').addEventListener('click', () => askForToken(null));
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const token = $('token-input').value.trim();
      if (token) saveToken(token);
    });
    $('token-cancel').addEventListener('click', () => closeTokenDialog());
    $('token-forget').addEventListener('click', () => {
      sessionToken = '';
      store(TOKEN_KEY, '');
      $('token-input').value = '';
    });
    // Esc or Cancel: stop nagging until the user asks again; playback keeps working.
    $('token-dialog').addEventListener('close', () => {
      if (state.tokenWanted) setApiState('token needed', 'bad');
    });
    video.addEventListener('playing', () => overlay(''));
    video.addEventListener('waiting', () => { if (state.current) overlay('Buffering…'); });
    video.addEventListener('pause', () => {
      if (state.current && !video.ended) overlay('');
    });
    document.addEventListener('visibilitychange', () => { if (!document.hidden && !state.tokenWanted) poll(); });
  }

  async function main() {
    wire();
    await loadConfig();
    const params = new URLSearchParams(location.search);
    const app = params.get('app') || (state.config.apps[0] && state.config.apps[0].name) || 'live';
    const room = (params.get('room') || '').trim();
    setRoom(app, room);
    for (const b of document.querySelectorAll('.switch .seg')) {
      b.setAttribute('aria-pressed', String(b.dataset.type === preferredType(app)));
    }
    if (room) play(app, room, params.get('type') || preferredType(app));
    setInterval(tick, TICK_MS);
    if (state.config.jwt && !sessionToken) askForToken(null);
    else poll();
  }

  main();
})();
