export declare const APT_PACKAGES: ReadonlyArray<{ pkg: string; why: string; provides: string[] }>;
export declare const ROOT: string;
export declare const FIXTURES: string;
export declare const INSTALL_COMMAND: string;
export declare function missingTestDeps(): string[];
