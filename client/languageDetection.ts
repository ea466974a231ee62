// Which files are Darknet cfgs. `.cfg` is also setup.cfg, tox.cfg and every other INI file, and
// VS Code's `firstLine` only sees line 1 and loses to the built-in Properties language's claim on
// `.cfg` anyway. So the extension does not claim `.cfg`: a `.cfg` file becomes `darknet` when its
// first section, after any blank and comment lines, is [net] or [network] (darknet's own rule for
// the network section, which must come first). Pure, so it is testable without VS Code.

/** Stop looking after this many characters: the first section of a real cfg is near the top. */
const SCAN_LIMIT = 64 * 1024;

export function isDarknetCfg(fileName: string, text: string): boolean {
  return /\.cfg$/i.test(fileName) && firstSectionIsNet(text);
}

/** Whether the first section header, with only blank and `#`/`;` comment lines before it, is [net] or [network]. */
export function firstSectionIsNet(text: string): boolean {
  const end = Math.min(text.length, SCAN_LIMIT);
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0; // byte order mark
  while (start < end) {
    let stop = text.indexOf('\n', start);
    if (stop < 0 || stop > end) stop = end;
    // darknet strips every whitespace character from a line before reading it
    const line = text.slice(start, stop).replace(/\s+/g, '');
    start = stop + 1;
    if (line === '' || line[0] === '#' || line[0] === ';') continue;
    return /^\[(net|network)\]/.test(line);
  }
  return false;
}
