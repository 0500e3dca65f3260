// The models the package knows by name: the authors' checkpoints in their repository at a pinned
// commit (models/manifest.json holds the same data; tests/node/models.test.mjs keeps them equal).
// The package ships no weights: a name is fetched from AUTHORS_BASE (or the caller's modelBaseUrl),
// checked against its sha256, and cached (browsers: Cache API; Node: a cache folder).

export const AUTHORS_BASE = 'https://raw.githubusercontent.com/Zheng222/IMDN/8f158e6a5ac9db6e5857d9159fd4a6c4214da574/checkpoints/';

export const MODELS = Object.freeze({
  x2: Object.freeze({ checkpoint: 'IMDN_x2.pth', sha256: '740b39653592bd3f49955a21cd9e16f2d37f2c413368cc09327601b8fbe42ce1', arch: 'IMDN', scale: 2 }),
  x3: Object.freeze({ checkpoint: 'IMDN_x3.pth', sha256: '11b1716a19bc16e5e353e1db798d476169338e631eb170c82d765559888cb028', arch: 'IMDN', scale: 3 }),
  x4: Object.freeze({ checkpoint: 'IMDN_x4.pth', sha256: 'e660c38221147217a136debeb99eb304d62d9c0f73ac421ed66281b619719714', arch: 'IMDN', scale: 4 }),
  as: Object.freeze({ checkpoint: 'IMDN_AS.pth', sha256: '3cbddf7635581a5a1eab501b18081e7825dcdfd53a1a7670e1e571515eae76ff', arch: 'IMDN_AS', scale: 1 }),
  rtc: Object.freeze({ checkpoint: 'model_RTC.pth', sha256: '5696ca25971477a93f2a3f3b235039e30afefff1bb560efdc48c0f880635a2ab', arch: 'IMDN_RTC', scale: 2 }),
  rte: Object.freeze({ checkpoint: 'model_RTE.pth', sha256: '4f5df6feb541d3904e1bceb9d7444bde3a8068d91c22941f4c83247663081c7d', arch: 'IMDN_RTE', scale: 2 }),
});

/** Known model names and the authors' file each one is. */
export const KNOWN_MODELS = Object.freeze(Object.fromEntries(Object.entries(MODELS).map(([k, v]) => [k, v.checkpoint])));
